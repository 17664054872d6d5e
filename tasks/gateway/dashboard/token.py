"""The dashboard's token: `.router/secrets/dashboard_token` (0600), made by the first `doit dashboard`.

LiteLLM's process reads it when it changes (its mtime), so a new token needs no restart; without
the file every dashboard request is refused.
"""

from __future__ import annotations

import hmac
import os

from pathlib import Path

from ...base.paths import Paths

MAX_TOKEN = 256


def ensure(paths: Paths) -> str:
    """The token, made now when there is none (atomic, 0600 in the 0700 secrets dir)."""
    existing = read(paths)
    if existing:
        return existing
    import secrets

    from ...base.fsutil import PRIVATE_DIR_MODE, atomic_write, ensure_dir

    ensure_dir(paths.secrets_dir, PRIVATE_DIR_MODE)
    token = secrets.token_urlsafe(24)
    atomic_write(paths.dashboard_token, token + "\n", mode=0o600, only_if_changed=False)
    return token


def read(paths: Paths) -> str | None:
    from ...base.fsutil import NotRegularFile, read_regular

    try:
        raw, _ = read_regular(paths.dashboard_token, MAX_TOKEN)
    except (OSError, NotRegularFile):
        return None
    token = raw.decode("ascii", "replace").strip()
    return token if 16 <= len(token) <= MAX_TOKEN and token.isprintable() else None


class Checker:
    """Compares a presented token with the file's, re-reading the file only when it changed."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self._seen: tuple | None = None
        self._token: str | None = None

    def token(self) -> str | None:
        try:
            info = os.stat(self.paths.dashboard_token)
            seen = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            return None
        if seen != self._seen:
            self._seen, self._token = seen, read(self.paths)
        return self._token

    def verdict(self, presented: str | None) -> int:
        """200 when the token matches, 401 when none was given, 403 otherwise (or when there is no file)."""
        if not presented:
            return 401
        token = self.token()
        return 200 if token and hmac.compare_digest(token.encode(), presented.encode("utf-8", "replace")) else 403


def url(host: str, port: int, token: str) -> str:
    return f"http://{host}:{port}/flowgate/dashboard?token={token}"


def opener(paths: Paths, target: str) -> Path:
    """A private page (0600, in .router/state/) that sends the browser on to `target`.

    Opening `target` itself would put the token in the browser's command line, which every local
    user can read in the process list; the page's address carries no secret."""
    import html
    import json

    from ...base.fsutil import atomic_write

    page = paths.state_dir / "dashboard-open.html"
    # json.dumps escapes quotes; `</` is broken up: the target cannot end the script
    script = json.dumps(target).replace("</", "<\\/")
    atomic_write(page, "<!doctype html><meta charset=utf-8><title>FlowGate dashboard</title>"
                       f"<meta name=referrer content=no-referrer><script>location.replace({script})</script>"
                       f"<p>Opening the dashboard: <a href=\"{html.escape(target)}\">continue</a></p>\n", mode=0o600)
    return page
