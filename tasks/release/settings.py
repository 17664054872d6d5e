"""What `cliproxy.release.*` and `cliproxy.binary` ask for (a fetch's result: tasks.release.install)."""

from __future__ import annotations

import re
from collections import namedtuple

from ..base.errors import FlowgateError
from . import lines

_REPO = r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"
_TAG = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"  # v7.2.140, v6.9.8-0, 2026.05.01


class ReleaseSettings(namedtuple("ReleaseSettings", "repo version api_url check_interval_hours allow_unverified binary",
                               defaults=(lines.MAINLINE_REPO, "latest", None, 24, False, None))):
    """Built by the config loader from `cliproxy.release.*` and `cliproxy.binary`.

    version  a tag like "v6.8.16-0", or "latest"
    api_url  None: the env's GITHUB_API_URL, else https://api.github.com
    binary   a user-installed binary: skips fetching entirely
    """

    __slots__ = ()

    @property
    def is_latest(self) -> bool:
        return self.version.strip().lower() == "latest"


def settings_from_stack(stack: dict) -> ReleaseSettings:
    """ReleaseSettings from the resolved stack config (`cliproxy.release.*`, `cliproxy.binary`)."""
    rel = stack["cliproxy"]["release"]
    return ReleaseSettings(repo=rel["repo"], version=rel["version"], api_url=rel["api_url"],
                           check_interval_hours=rel["check_interval_hours"],
                           allow_unverified=rel["allow_unverified"], binary=stack["cliproxy"]["binary"])


def valid_tag(value) -> bool:
    """A tag FlowGate may print, pass on and use in a file name (length and charset)."""
    return isinstance(value, str) and re.fullmatch(_TAG, value) is not None


def valid_repo(value) -> bool:
    return isinstance(value, str) and re.fullmatch(_REPO, value.strip()) is not None


def validate(settings: ReleaseSettings) -> None:
    """FlowgateError unless the repository is owner/name and the version a tag or `latest`."""
    if not valid_repo(settings.repo):
        raise FlowgateError(f"cliproxy.release.repo {settings.repo!r} is not of the form owner/name",
                            f"e.g. `cliproxy.release.repo: {lines.MAINLINE_REPO}`")
    version = settings.version.strip()
    if not version or any(c.isspace() or c in "/?#" for c in version):
        raise FlowgateError(f"cliproxy.release.version {settings.version!r} is not a release tag",
                            f"use a tag like {lines.MAINLINE_VERSION}, or latest")
