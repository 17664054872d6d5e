"""Getting the CLIProxyAPI binary: GitHub Releases client, the two lines (mainline / Plus), asset
choice, checksum verification, safe archive extraction, install and manifest, progress bar; and what
is newer than what is installed (`outdated`, with LiteLLM's versions from PyPI: `pypi`).

The names below are the package's public surface. They load on first use (PEP 562), so a caller
that needs only `tasks.release.lines` (every `doit status` does) pays for nothing else.
Nothing here imports doit; httpx is imported by `github` inside functions only.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ReleaseSettings": "settings", "FetchResult": "install", "settings_from_stack": "settings",
    "Asset": "assets", "host_platform": "assets", "parse_asset": "assets", "pick_asset": "assets",
    "Binary": "installed", "locate_binary": "installed",
    "installed_binary": "installed", "installed_line": "installed", "is_current": "installed",
"read_manifest": "installed",
    "extract_binary": "archive",
    "ProgressBar": "progress", "progress_enabled": "progress",
    "fetch": "install",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
