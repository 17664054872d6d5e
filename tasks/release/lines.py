"""The two lines of CLIProxyAPI FlowGate can run, and everything that differs between them.

The mainline (`router-for-me/CLIProxyAPI`, v7) is the default: the Plus repository
(`router-for-me/CLIProxyAPIPlus`) was deleted on 2026-04-22, and community forks continue the
Plus line (GitHub Copilot and Kiro logins). A line is recognised from a release's own asset and
binary names (or the binary's version banner), never from the repository's name, so a fork or a
mirror under any name works.

Stdlib only: the warm paths (`doit up`, `doit status`) import this.
"""

from __future__ import annotations

import re
from collections import namedtuple

MAINLINE_REPO = "router-for-me/CLIProxyAPI"
MAINLINE_VERSION = "v7.2.140"
DELETED_PLUS_REPO = "router-for-me/CLIProxyAPIPlus"
EXAMPLE_PLUS_FORK = "kaitranntt/CLIProxyAPIPlus"


class Line(namedtuple("Line", "name title asset_prefix binary health_path")):
    """One line of CLIProxyAPI.

    name          "mainline" | "plus"
    title         for people: "CLIProxyAPI" / "CLIProxyAPIPlus"
    asset_prefix  archives: <prefix>_<version>_<os>_<arch>[_no-plugin].tar.gz
    binary        the executable at the archive root (".exe" on Windows)
    health_path   the readiness probe: /healthz exists on the mainline only
    """

    __slots__ = ()


MAINLINE = Line("mainline", "CLIProxyAPI", "CLIProxyAPI", "cli-proxy-api", "/healthz")
PLUS = Line("plus", "CLIProxyAPIPlus", "CLIProxyAPIPlus", "cli-proxy-api-plus", "/")
LINES = {line.name: line for line in (MAINLINE, PLUS)}
BINARY_NAMES = tuple(line.binary for line in LINES.values())

_BANNER = r"CLIProxyAPI Version:\s*([^\s,]+)"  # compiled by `re` on first use, not at every import


def by_asset_prefix(prefix: str) -> Line | None:
    return next((line for line in LINES.values() if line.asset_prefix.lower() == prefix.lower()), None)


def by_binary_name(file_name: str) -> Line | None:
    stem = file_name[:-4] if file_name.lower().endswith(".exe") else file_name
    return next((line for line in LINES.values() if line.binary == stem), None)


def banner_version(text: str) -> str | None:
    """The version in `CLIProxyAPI Version: 7.2.140, Commit: …` (the binary has no -version flag)."""
    match = re.search(_BANNER, text)
    return match.group(1) if match else None


def by_version(version: str | None) -> Line | None:
    """Plus builds say so in their version (`6.8.16-0-plus`); the mainline's has no suffix."""
    if not version:
        return None
    return PLUS if version.lower().endswith("-plus") else MAINLINE
