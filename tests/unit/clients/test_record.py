"""tasks.clients.record and the status line: applied client settings go stale when the gateway moves."""

from __future__ import annotations

from tasks.inspect import status
from tasks.clients import record
from tasks.config.load import load_stack
from tests.catalog_support import keep


def apply_record(paths, stack, client="codex"):
    record.remember(paths, client, record.current_settings(paths, stack, client), files=["/f"], created=[])


def test_fresh_record_is_not_stale_and_a_moved_gateway_is(paths):
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    apply_record(paths, stack)
    apply_record(paths, stack, "claude")
    assert record.stale(paths, stack) == []
    stack["litellm"]["port"] = 4100
    stack["clients"]["claude"]["model"] = "claude-opus-5"
    assert record.stale(paths, stack) == [
        {"client": "claude", "changed": ["gateway address", "model"], "command": "uv run doit integrate:claude --apply"},
        {"client": "codex", "changed": ["gateway address"], "command": "uv run doit integrate:codex --apply"},
    ]


def test_status_table_names_the_stale_client_and_the_fix(paths):
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    apply_record(paths, stack)
    stack["litellm"]["host"] = "127.0.0.2"
    text = status.table(status.collect(paths, stack))
    assert "codex settings are stale (gateway address changed since applied): run `uv run doit integrate:codex --apply`" in text


def test_settings_applied_by_an_older_flowgate_are_stale(paths):
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    settings = record.current_settings(paths, stack, "codex")
    del settings["wiring"]  # as FlowGate recorded them before Codex's model list was wired
    record.remember(paths, "codex", settings, files=["/f"], created=[])
    assert record.stale(paths, stack) == [{"client": "codex", "changed": ["what integrate writes (a newer FlowGate)"],
                                           "command": "uv run doit integrate:codex --apply"}]


def test_forget_and_a_damaged_record(paths):
    stack = load_stack(paths)
    apply_record(paths, stack)
    assert record.forget(paths, "codex")["files"] == ["/f"] and record.read(paths) == {}
    record.record_path(paths).write_text("{not json")
    assert record.stale(paths, stack) == []  # status stays cheap and never fails on it


def test_status_flags_applied_settings_naming_a_model_no_longer_served(paths):
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    apply_record(paths, stack)  # codex: gpt-5.6-sol and gpt-5.4-mini, chosen automatically
    keep(paths, "codex-free", "claude")  # the plan changed: no Sol on it, the mini still served ...
    report = status.collect(paths, stack)
    assert {(c["client"], c["model"]) for c in report["models"]["clients"]} == {("codex", "gpt-5.6-sol")}
    keep(paths, "claude")  # ... then the codex account was removed
    report = status.collect(paths, stack)
    assert {(c["client"], c["model"]) for c in report["models"]["clients"]} == {("codex", "gpt-5.6-sol"), ("codex", "gpt-5.4-mini")}
    assert ("codex settings name gpt-5.6-sol (model), which no account serves now: run `uv run doit integrate:codex --apply`"
            in status.table(report))


def test_status_reads_what_the_clients_files_name_now(paths, tmp_path):
    """A client that rewrote its own settings (Codex's "Try new model" dialog) is noticed, with the fix."""
    from tasks.clients import codex
    from tasks.clients.files import apply

    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    env = {"CODEX_HOME": str(tmp_path)}
    changes, _ = codex.plan(paths, stack, False, env)
    apply(changes)
    record.remember(paths, "codex", record.current_settings(paths, stack, "codex"), files=[str(c.path) for c in changes],
                    created=[])
    assert status.collect(paths, stack)["models"]["clients"] == []
    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace('model = "gpt-5.6-sol"', 'model = "gpt-6-sol"'))
    assert (f"codex settings name gpt-6-sol (model in {config}), which no account serves now: "
            "run `uv run doit integrate:codex --apply`") in status.table(status.collect(paths, stack))


def test_status_never_blocks_on_a_client_file_that_is_no_file(paths, tmp_path):
    import os

    keep(paths, "codex-plus")
    stack = load_stack(paths)
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    record.remember(paths, "codex", record.current_settings(paths, stack, "codex"), files=[str(fifo)], created=[])
    assert status.collect(paths, stack)["models"]["clients"] == []  # unreadable: what was applied, which is served


def test_up_names_the_clients_to_apply_again_and_an_unserved_slot(paths):
    """Issue 31, item 25: after a port change `up` says which `integrate:<client> --apply` to run, and
    warns about a client slot no account serves."""
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    apply_record(paths, stack)
    stack["litellm"]["port"] = 4100
    stack["clients"]["codex"]["model"] = "gpt-9"
    said = record.after_up(paths, stack)
    assert ("codex settings are stale (gateway address, model changed since applied): "
            "run `uv run doit integrate:codex --apply`") in said
    assert "warning: gpt-9 is not served now (named by codex model; `uv run doit models` lists what is)" in said


def test_a_client_wired_with_a_members_key_stays_fresh_and_its_fix_keeps_the_key(paths):
    keep(paths, "codex-plus", "claude")
    stack = load_stack(paths)
    record.remember(paths, "codex", record.current_settings(paths, stack, "codex", "ana"), files=["/f"], created=[])
    assert record.stale(paths, stack) == []  # the member's key path is what a fresh apply with --key would write
    stack["litellm"]["port"] = 4100
    assert record.stale(paths, stack) == [
        {"client": "codex", "changed": ["gateway address"], "command": "uv run doit integrate:codex --apply --key ana"}]
