"""tasks.catalog.store and discover.changes: the kept catalog and what a refresh says."""

from __future__ import annotations

import os

from tasks.catalog import store
from tasks.catalog.discover import auth_dir_changed_since, changes
from tests.catalog_support import catalog, keep


def test_round_trip_and_odd_files_read_as_none(paths):
    kept = keep(paths, "codex-free", "claude")
    again = store.read(paths)
    assert again.ids() == kept.ids() and again.get("gpt-5.5").protocol == "openai"
    assert again.get("claude-sonnet-4-6").protocol == "anthropic" and again.get("nope") is None
    for odd in (b"", b"[]", b"{\"models\": 3}", b"\xff" * 10):
        store.path(paths).write_bytes(odd)
        assert store.read(paths) is None
    store.path(paths).unlink()
    os.mkfifo(store.path(paths))  # never blocks
    assert store.read(paths) is None


def test_changes_name_what_came_and_went():
    free, plus = catalog("codex-free"), catalog("codex-plus")
    assert changes(free, free) == ""
    assert changes(None, free) == "models: 5 served"
    said = changes(free, plus)
    assert said.startswith("models: 8 served; new: gpt-5.3-codex-spark, gpt-5.4, gpt-5.6-sol")
    assert changes(plus, catalog()) == "models: no account serves a model now"
    assert "no longer served: gpt-5.3-codex-spark" in changes(plus, free)


def test_auth_dir_changes_are_seen_by_a_stat(paths):
    kept = keep(paths, "claude")
    assert auth_dir_changed_since(paths, None)
    assert not auth_dir_changed_since(paths, kept)  # no auth dir yet: nothing changed
    paths.auths_dir.mkdir()
    os.utime(paths.auths_dir, (kept.read_at + 5, kept.read_at + 5))
    assert auth_dir_changed_since(paths, kept)


def test_the_models_table_says_what_to_do_before_anything_was_read(paths):
    from tasks.catalog import table
    from tasks.config.load import load_stack

    stack = load_stack(paths)
    text = table.table(stack, None, "`uv run doit login:codex`")
    assert "no model list read yet: start the stack (`uv run doit up`), then log in with `uv run doit login:codex`" in text
    assert "no account serves a model" in table.table(stack, catalog(), "`uv run doit login:codex`")


def test_before_any_login_one_line_says_to_log_in(paths):
    """Issue 31, item 25: no account yet: one line to log in, not a warning per profile's model."""
    from tasks.catalog import table
    from tasks.config.load import load_stack
    from tasks.inspect import status

    stack = load_stack(paths)
    text = table.table(stack, catalog(), "`uv run doit login:codex`")
    assert "warning:" not in text and text.count("log in") == 1, text
    store.write(paths, catalog())
    report = status._models(paths, stack)
    assert report["unserved"] == [] and report["clients"] == []
