"""tasks.upgrade.verify: what the checks before traffic moves say they did."""

from __future__ import annotations

import os

from tasks.upgrade import verify
from tests.unit.doubles.test_cliproxy_double import CLIENT_KEY, start_double  # noqa: F401  (fixture)


def test_no_account_says_the_smoke_test_was_skipped(start_double, paths):
    """Issue 31, item 25: an upgrade with no account says it skipped the smoke test, and how to run it."""
    d = start_double()
    secret = paths.secret("cliproxy_api_key")
    secret.parent.mkdir(parents=True, mode=0o700)
    secret.write_text(CLIENT_KEY + "\n")
    os.chmod(secret, 0o600)
    said: list[str] = []
    verify.smoke(paths, {}, f"http://127.0.0.1:{d.port}", out=said.append, timeout=5)
    assert said == ["cliproxy: smoke test skipped on the new instance: no account serves a model yet (it was "
                    "checked for readiness only); after a login, `uv run doit smoke` runs it"]
