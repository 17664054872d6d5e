"""tasks.accounts.quota against the CLIProxyAPI double over real HTTP: windows per account, notes for
failures, the 60 s copy; and the body parsers with hostile input."""

from __future__ import annotations

import json
import os
import time

from tasks.accounts import quota
from tasks.accounts.inventory import list_accounts
from tasks.accounts.management import Management
from tasks.accounts.quota_parse import claude, codex, upstream_message
from tasks.base.paths import Paths
from tests.conftest import ROOT
from tests.support import record_as_ours
from tests.fakes.cliproxy_double import CLAUDE_WINDOWS, CODEX_WINDOWS
from tests.unit.doubles.test_cliproxy_double import MGMT_KEY, start_double, write_account  # noqa: F401  (fixture)


def _setup(start_double, tmp_path):
    d = start_double()
    paths = Paths(root=ROOT, home=tmp_path / "home")
    paths.router.mkdir(parents=True)
    os.symlink(d.auth_dir, paths.auths_dir)  # the binary's auth-dir is .router/auths, as under FlowGate
    record_as_ours(paths, "cliproxy", d.proc.pid, d.port)  # as `doit up` would have recorded it
    return d, paths, Management("127.0.0.1", d.port, MGMT_KEY, timeout=5.0)


def test_windows_per_account_and_notes_for_the_rest(start_double, tmp_path):
    d, paths, client = _setup(start_double, tmp_path)
    write_account(d.auth_dir, "codex-a@example.com.json", {"type": "codex", "email": "a@example.com",
                                                           "access_token": "t1", "account_id": "acc"})
    write_account(d.auth_dir, "claude-b@example.com.json", {"type": "claude", "email": "b@example.com", "access_token": "t2"})
    write_account(d.auth_dir, "claude-x@example.com.json", {
        "type": "claude", "email": "x@example.com", "access_token": "t3",
        "double_upstream": {"status_code": 401, "body": '{"error": {"message": "token \\u001b[31mexpired"}}'}})
    write_account(d.auth_dir, "kimi-k.json", {"type": "kimi", "username": "k", "access_token": "t4"})
    got = quota.by_name(quota.read_all(client, paths, list_accounts(client), wait=5.0))
    a = got["codex-a@example.com.json"]
    assert a.plan == "plus" and [(w.name, w.used_percent) for w in a.windows] == [
        ("5h", CODEX_WINDOWS["primary_window"][0]), ("weekly", CODEX_WINDOWS["secondary_window"][0])]
    assert abs(a.windows[0].resets_at - time.time() - CODEX_WINDOWS["primary_window"][2]) < 60
    b = got["claude-b@example.com.json"]
    assert [(w.name, w.used_percent) for w in b.windows] == [
        ("5h", CLAUDE_WINDOWS["five_hour"][0]), ("7d", CLAUDE_WINDOWS["seven_day"][0]),
        ("7d-opus", CLAUDE_WINDOWS["seven_day_opus"][0])]  # seven_day_sonnet is null: left out
    assert got["claude-x@example.com.json"].note == "claude answered 401: token \x1b[31mexpired"
    assert got["kimi-k.json"].note == "quota not available for kimi"
    lines = quota.account_lines(list(got.values()))
    assert not any("\x1b" in line for line in lines) and any("\\x1b[31mexpired" in line for line in lines)
    status = quota.provider_lines(list(got.values()))
    assert status[0].startswith(f"quota claude: fullest window 5h {CLAUDE_WINDOWS['five_hour'][0]:g}% used")
    assert "1 account(s) without an answer" in status[0]
    assert any(line.startswith(f"quota codex: fullest window 5h {CODEX_WINDOWS['primary_window'][0]:g}% used") for line in status)
    assert "quota not available for kimi" in status


def test_the_copy_is_used_while_fresh_and_never_when_broken(start_double, tmp_path):
    d, paths, client = _setup(start_double, tmp_path)
    write_account(d.auth_dir, "claude-b@example.com.json", {"type": "claude", "email": "b@example.com", "access_token": "t2"})
    stack = {"cliproxy": {"host": "127.0.0.1", "port": d.port}}
    paths.secrets_dir.mkdir()
    paths.secret("cliproxy_management_key").write_text(MGMT_KEY)
    listed = list_accounts(client)
    first = quota.current(paths, stack, listed)
    assert first[0].windows
    d.stop()  # nobody to ask: a fresh copy is all there is
    assert quota.current(paths, stack, listed) == first
    assert quota.cached(paths, now=time.time() + quota.CACHE_SECONDS + 1) is None
    for broken in (b"[]", b"{nope", json.dumps({"fetched_at": "x"}).encode(), b"x" * (quota.MAX_CACHE + 2)):
        paths.quota_cache.write_bytes(broken)
        assert quota.cached(paths) is None


def test_an_unreachable_provider_and_a_missing_auth_index_are_notes(start_double, tmp_path):
    d, paths, client = _setup(start_double, tmp_path)
    write_account(d.auth_dir, "codex-a@example.com.json", {"type": "codex", "email": "a@example.com", "access_token": "t"})
    account = list_accounts(client)[0]
    assert quota.read_one(client, paths, account).note == "codex answered 401: Unauthorized"  # no account id
    assert quota.read_one(client, paths, account._replace(auth_index="")).note.startswith("quota not available")
    down = Management("127.0.0.1", d.port, MGMT_KEY, timeout=5.0)
    d.stop()
    assert "is not running" in quota.read_one(down, paths, account).note


def test_parsers_take_nothing_on_trust():
    now = 1_000_000.0
    assert codex("[]", now) is None and codex("x" * 70000, now) is None and codex("{}", now) is None
    plan, windows = codex(json.dumps({"plan_type": "p" * 500, "rate_limit": {
        "primary_window": {"used_percent": 250, "reset_after_seconds": 60},
        "secondary_window": {"used_percent": True, "reset_at": 2_000_000_000_000}}}), now)
    assert len(plan) == 40 and windows == [("5h", 100.0, now + 60)]
    assert claude(json.dumps({"five_hour": {"utilization": "NaN"}, "seven_day": {"utilization": -3, "resets_at": "soon"},
                              "seven_day_opus": "x"})) == [("7d", 0.0, None)]
    assert claude(json.dumps({"five_hour": {"utilization": 5, "resets_at": "2030-01-01T00:00:00Z"}}))[0].resets_at == 1893456000.0
    assert upstream_message('{"detail": "nope"}') == "nope" and len(upstream_message("<html>" * 100)) == 160
    assert quota.until(None) == "-" and quota.until(now + 3 * 86400 + 7200, now) == "3d02h" and quota.until(now - 1, now) == "now"
