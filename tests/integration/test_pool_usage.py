"""Usage per account and what it saved (issue 29, items 3 and 5) on the double and on the real
CLIProxyAPI, with the same assertions: two accounts per provider serve in rotation through the
gateway; the binary's per-account totals (tasks.usage.ledger.note_counters) name each account with
its requests, its usage queue (drain_queue, as with accounts.read_usage_queue: true) gives the
tokens and the API price of what the subscriptions served. The stacks are test_real_pool's."""

from __future__ import annotations

import json

import anthropic
import openai

from tests.integration.test_real_pool import CLAUDE_MODEL, CODEX_MODEL, files, pool  # noqa: F401  (a fixture)
from tests.support import wait_for


def test_doit_usage_names_each_pooled_account_with_its_requests_tokens_and_savings(pool):  # noqa: F811
    from tasks.accounts.management import Management
    from tasks.usage import ledger

    client = Management.for_stack(pool.paths, json.loads(pool.paths.stack_json.read_text()))
    ledger.note_counters(pool.paths, client.get("auth-files")["files"])  # the first reading: every account at 0
    openai_client = openai.OpenAI(base_url=f"{pool.litellm_url}/v1", api_key=pool.master_key, max_retries=0)
    anthropic_client = anthropic.Anthropic(base_url=pool.litellm_url, api_key=pool.master_key, max_retries=0)
    for _ in range(2):  # one request per account: the rotation takes each in turn (half its window)
        openai_client.chat.completions.create(model=CODEX_MODEL, messages=[{"role": "user", "content": "pool usage"}])
        anthropic_client.messages.create(model=CLAUDE_MODEL, max_tokens=16,
                                         messages=[{"role": "user", "content": "pool usage"}])
    listed = files(pool)
    assert all(listed[n]["success"] == 1 for names in pool.names.values() for n in names), listed
    ledger.note_counters(pool.paths, client.get("auth-files")["files"])
    drained = [0]  # the binary queues a record after its answer: they may come in more than one read
    wait_for(lambda: drained.append(drained.pop() + ledger.drain_queue(pool.paths, client)) or drained[0] >= 4,
             timeout=15, what="the four usage-queue records")
    assert drained == [4]

    result = pool.doit("usage", "--by", "account", "--json", "--since", "1h")
    assert result.returncode == 0, result.output
    data = json.loads(result.stdout)
    rows = {g["name"]: g for g in data["by"]["account"]}
    for provider, names in pool.names.items():
        for name in names:
            row = rows[name]
            assert (row["provider"], row["account"], row["requests"], row["errors"]) == (
                provider, listed[name]["email"], 1, 0), row
            assert row["tokens_in"] > 0 and row["tokens_out"] > 0 and row["usd"] > 0 and row["unpriced_tokens"] == 0, row
    saved = data["savings"]
    assert saved["known"] and {m["model"] for m in saved["by_model"]} == {CODEX_MODEL, CLAUDE_MODEL}
    assert all(m["priced"] and m["requests"] == 2 for m in saved["by_model"]), saved["by_model"]
    assert {a["name"] for a in saved["by_account"]} == {n for names in pool.names.values() for n in names}
    text = pool.doit("usage", "--by", "account", "--since", "1h").stdout
    assert "your subscriptions served " in text and " of API-priced tokens this week" in text and all(listed[n]["email"] in text for n in listed)
