"""What `cliproxy.release.*` and `cliproxy.binary` ask for, and what a fetch did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import lines


@dataclass(frozen=True)
class ReleaseSettings:
    """Built by the config loader from `cliproxy.release.*` and `cliproxy.binary`."""

    repo: str = lines.MAINLINE_REPO
    version: str = "latest"  # a tag like "v6.8.16-0", or "latest"
    api_url: str | None = None  # None: env GITHUB_API_URL, else https://api.github.com
    check_interval_hours: float = 24
    allow_unverified: bool = False
    binary: str | Path | None = None  # a user-installed binary: skips fetching entirely

    @property
    def is_latest(self) -> bool:
        return self.version.strip().lower() == "latest"


def settings_from_stack(stack: dict) -> ReleaseSettings:
    """ReleaseSettings from the resolved stack config (`cliproxy.release.*`, `cliproxy.binary`)."""
    rel = stack["cliproxy"]["release"]
    return ReleaseSettings(repo=rel["repo"], version=rel["version"], api_url=rel["api_url"],
                           check_interval_hours=rel["check_interval_hours"],
                           allow_unverified=rel["allow_unverified"], binary=stack["cliproxy"]["binary"])


@dataclass(frozen=True)
class FetchResult:
    action: str  # "installed" | "unchanged" | "user-binary"
    tag: str | None
    sha256: str | None  # of the release archive
    requests: int  # HTTP requests made (0 on a warm run)
    binary: Path | None = None
    asset: str | None = None
    verified_by: tuple[str, ...] = field(default_factory=tuple)
    line: str | None = None  # "mainline" | "plus"
    build: str | None = None  # e.g. "glibc build" or "static no-plugin build"

    def describe(self) -> str:
        """`CLIProxyAPI 7.2.140 (mainline, glibc build)` for fetch's output."""
        line = lines.LINES.get(self.line or "")
        title = line.title if line else "CLIProxyAPI"
        version = self.tag[1:] if self.tag and self.tag[:1] in "vV" else self.tag
        about = ", ".join(x for x in (self.line, self.build) if x)
        return f"{title} {version}" + (f" ({about})" if about else "")
