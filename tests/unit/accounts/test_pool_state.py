"""tasks.accounts.pool_state (contract B's reader and writer) and the pool's words in `doit accounts`."""

import time

from tasks.accounts import inventory, pool_state
from tasks.accounts.inventory import Account


def test_written_private_read_back_and_anything_odd_reads_as_none(paths):
    assert pool_state.read(paths) is None
    pool_state.write(paths, {"updated": time.time(), "accounts": [{"name": "a", "state": "out"}], "steered": {}})
    assert paths.pool_state.stat().st_mode & 0o777 == 0o600
    data = pool_state.read(paths)
    assert pool_state.account(data, "a") == {"name": "a", "state": "out"} and pool_state.fresh(data)
    for junk in (b"[]", b"{", b'{"accounts": {}, "steered": {}}', b" " * (pool_state.MAX_BYTES + 1)):
        paths.pool_state.write_bytes(junk)
        assert pool_state.read(paths) is None
    assert not pool_state.fresh({"updated": time.time() - 600}) and not pool_state.fresh(None)


def test_the_users_disables_are_marked_and_an_enable_or_remove_clears_them(paths):
    pool_state.note_user(paths, "a.json", "disable")
    pool_state.note_user(paths, "b.json", "disable")
    pool_state.note_user(paths, "b.json", "enable")
    assert pool_state.marks(paths) == {"a.json": "disable"}
    pool_state.note_user(paths, "a.json", "remove")
    assert pool_state.marks(paths) == {}
    assert paths.pool_marks.stat().st_mode & 0o777 == 0o600


def account(**kw):
    base = dict(name="a.json", provider="codex", type="codex", label="a@x", status="active", disabled=False,
                last_refresh="", status_message="", unavailable=False, auth_index="i", success=7, failed=1)
    return Account(**{**base, **kw})


def test_the_state_in_the_pool_in_words():
    until = time.mktime((2026, 12, 7, 15, 40, 0, 0, 0, -1))
    assert inventory.pool_text(account(disabled=True), {"state": "out", "until": until}) == "out until 15:40 (FlowGate)"
    assert inventory.pool_text(account(disabled=True), None) == "disabled by you"
    assert inventory.pool_text(account(), {"state": "in"}) == "in rotation"
    assert inventory.pool_text(account(unavailable=True), None) == "cooling down (CLIProxyAPI)"
    table = inventory.table([account()], None, {"a.json": "plus"})
    assert "requests ok/failed" in table and "plus" in table and "7/1" in table


def test_the_binarys_counters_are_read_defensively():
    entry = {"name": "a.json", "type": "codex", "success": 3, "failed": "x"}
    got = Account.from_file(entry)
    assert (got.success, got.failed) == (3, 0)
    assert Account.from_file({**entry, "success": True, "failed": -2})[-2:] == (0, 0)


def test_status_counts_the_accounts_out_and_suggests_no_login_for_them():
    from tasks.accounts import quota

    stack = {"providers": ["codex"]}
    accounts = [account(disabled=True, status="disabled"), account(name="b.json", disabled=True, status="disabled")]
    pool = {"accounts": [{"name": "a.json", "state": "out", "plan": "plus",
                          "windows": [{"name": "5h", "used_percent": 92.0, "resets_at": None}]}], "steered": {}}
    got = inventory.summary(accounts, stack, None, pool)["codex"]
    assert got == {"accounts": 2, "active": 0, "out": 1}
    assert inventory.summary_lines({"codex": got}) == [
        "codex: 2 accounts, 0 active, 1 out of rotation near a quota limit (FlowGate; back at the reset)"]
    assert "fix" in inventory.summary(accounts, stack, None, None)["codex"]
    kept = quota.from_pool(accounts, pool, {})
    assert list(kept) == ["a.json"] and kept["a.json"].plan == "plus" and kept["a.json"].windows[0].used_percent == 92.0
