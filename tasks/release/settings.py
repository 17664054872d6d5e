"""What `cliproxy.release.*` and `cliproxy.binary` ask for (a fetch's result: tasks.release.install)."""

from __future__ import annotations

from collections import namedtuple

from . import lines


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
