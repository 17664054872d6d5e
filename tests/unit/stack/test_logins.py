"""tasks.stack.logins and the login's poll loop: a CLIProxyAPI switch cancels a waiting login with its reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tasks.accounts import login as login_mod
from tasks.accounts.providers import TABLE
from tasks.base.errors import FlowgateError
from tasks.base.paths import Paths
from tasks.stack import logins
from tests.unit.release.support import ROOT


@pytest.fixture
def paths(tmp_path) -> Paths:
    return Paths(root=ROOT, home=tmp_path / "home")


def test_a_registered_login_is_marked_and_a_dead_ones_file_removed(paths):
    logins.register(paths, "codex", "st4te")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = paths.run_dir / "logins" / f"{dead.stdout.strip()}.json"
    stale.write_text('{"provider": "claude", "state": "x", "pid": %s}' % dead.stdout.strip())
    assert logins.cancelled(paths) is None
    marked = logins.cancel_all(paths, "CLIProxyAPI was replaced")
    assert [(m["provider"], m["state"]) for m in marked] == [("codex", "st4te")]
    assert logins.cancelled(paths) == "CLIProxyAPI was replaced" and not stale.exists()
    logins.unregister(paths)
    assert logins.cancelled(paths) is None


class Waiting:
    """A management client whose login never finishes; the switch happens after `after` polls."""

    def __init__(self, paths, after: int, then_refuse: bool):
        self.paths, self.after, self.then_refuse, self.polls, self.deleted = paths, after, then_refuse, 0, []

    def get(self, route, **query):
        self.polls += 1
        if self.polls == self.after:
            logins.cancel_all(self.paths, "CLIProxyAPI was replaced (upgrade to v7.3.0) while the login waited")
        if self.polls > self.after and self.then_refuse:  # the old process is gone
            raise FlowgateError("cannot reach CLIProxyAPI at 127.0.0.1:8317 (connection refused)")
        return {"status": "wait"}

    def request(self, method, route, query=None):
        self.deleted.append(query)


@pytest.mark.parametrize("then_refuse", [False, True])
def test_the_poll_loop_ends_with_the_switch_and_says_why(paths, then_refuse):
    client = Waiting(paths, after=3, then_refuse=then_refuse)
    with pytest.raises(FlowgateError) as err:
        login_mod.wait_for_login(paths, {"providers": ["codex"]}, client, TABLE["codex"], "st4te", [], 60, lambda line: None,
                                 sleep=lambda s: None, register=True)
    assert err.value.message == ("the codex login was cancelled: CLIProxyAPI was replaced (upgrade to v7.3.0) "
                                 "while the login waited")
    assert "run `uv run doit login:codex` again" in err.value.hint
    assert logins.cancelled(paths) is None  # unregistered on the way out
