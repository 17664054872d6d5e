"""Member keys through the running gateway (issue 30), on a stack of this module's own (mainline
double, real LiteLLM, two replicas on one port), once per key store: the SQLite file and a real
PostgreSQL that FlowGate runs (postgres.managed). A key made by `doit keys create` passes on both
paths within its models, is refused outside them and over its rpm, and a revocation reaches every
replica; the master key keeps working throughout, also while the store cannot be read."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import make_stack, running
from tests.postgres_server import require_postgres
from tests.support import free_port, wait_for

LOCAL = """models:
  - {name: gpt-5.5}
  - {name: claude-sonnet-4-6}
"""


POSTGRES = """keys:
  store: postgres
postgres:
  managed: true
  port: {port}
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def st(tmp_path_factory, github, request):
    stack = make_stack(tmp_path_factory, github, f"member-keys-{request.param}")
    stack.store = request.param
    if request.param == "postgres":
        require_postgres(stack.paths)
    stack.write_local(LOCAL + (POSTGRES.format(port=free_port()) if request.param == "postgres" else ""))
    text = stack.paths.local_config.read_text()
    stack.paths.local_config.write_text(text.replace("litellm:\n", "litellm:\n  replicas: 2\n", 1))
    stack.seed_accounts("codex", "claude")
    with running(stack):
        yield stack


def create(st, name: str, *options: str) -> str:
    made = st.doit("keys", "create", name, *options)
    assert made.returncode == 0, made.output
    return made.stdout.splitlines()[1]


LEAN_CHAT = ("/v1/chat/completions", "gpt-5.5")  # an OpenAI deployment asked in its protocol: the lean path
LITELLM_MESSAGES = ("/v1/messages", "gpt-5.5")  # Messages to an OpenAI deployment: LiteLLM translates
LEAN_MESSAGES = ("/v1/messages", "claude-sonnet-4-6")


def ask(st, route: tuple[str, str], key: str, text: str = "hi") -> httpx.Response:
    path, model = route
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if path == "/v1/messages":
        body["max_tokens"] = 32
    return httpx.post(f"{st.litellm_url}{path}", json=body, timeout=60,
                      headers={"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"})


def refused_everywhere(st, key: str, status: int, what: str) -> None:
    """Until 8 requests in a row get `status` (the replicas share the port: each is asked, in all likelihood);
    `what` names what is awaited (200: served again)."""
    wait_for(lambda: all(ask(st, LEAN_CHAT, key).status_code == status for _ in range(8)), timeout=30, interval=0.2,
             what=f"{what} refused by every replica")


def path_of(resp: httpx.Response) -> str:
    return "lean" if resp.headers.get("x-flowgate-path") == "lean" else "litellm"


@pytest.mark.parametrize("route,path", [(LEAN_CHAT, "lean"), (LITELLM_MESSAGES, "litellm")])
def test_a_member_key_passes_on_both_paths_within_its_models(st, route, path):
    key = create(st, f"ana-{path}", "--models", "gpt-5*")
    resp = ask(st, route, key, "member")
    assert resp.status_code == 200 and path_of(resp) == path, resp.text
    refused = ask(st, LEAN_MESSAGES, key)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "error" and refused.json()["error"]["type"] == "permission_error"
    assert "limited to gpt-5*" in refused.json()["error"]["message"]


def test_over_its_rpm_a_member_gets_429_with_retry_after(st):
    key = create(st, "bo", "--rpm", "1")
    answers = [ask(st, LEAN_CHAT, key) for _ in range(5)]
    # counted per replica for now: at most one request per replica passes
    assert sum(r.status_code == 200 for r in answers) <= 2
    over = [r for r in answers if r.status_code == 429]
    assert len(over) >= 3 and all(int(r.headers["retry-after"]) > 0 for r in over)
    assert over[0].json()["error"]["code"] == "429"


def test_a_revocation_reaches_every_replica_and_the_master_key_keeps_working(st):
    key = create(st, "cy")
    assert ask(st, LEAN_CHAT, key).status_code == 200
    assert st.doit("keys", "revoke", "cy").returncode == 0

    refused_everywhere(st, key, 401, "the revoked key")
    answers = [ask(st, route, key) for route in (LEAN_CHAT, LITELLM_MESSAGES, LEAN_MESSAGES) for _ in range(4)]
    assert {r.status_code for r in answers} == {401}
    assert all("revoked" in r.text for r in answers)
    assert ask(st, LEAN_CHAT, st.master_key).status_code == 200
    assert ask(st, LITELLM_MESSAGES, st.master_key).status_code == 200


def test_an_unknown_member_key_is_401_in_each_protocol(st):
    for route in (LEAN_CHAT, LEAN_MESSAGES):
        resp = ask(st, route, "fg-not-a-key")
        assert resp.status_code == 401
        assert ("type" in resp.json()) == (route[0] == "/v1/messages")


def test_requests_are_recorded_per_member_key(st):
    import json

    key = create(st, "dee")
    for route in (LEAN_CHAT, LITELLM_MESSAGES):
        assert ask(st, route, key, "count me").status_code == 200

    def recorded():
        found = st.doit("usage", "--by", "key", "--json")
        rows = {g["key"]: g for g in json.loads(found.stdout)["by"]["key"]} if found.returncode == 0 else {}
        return rows.get("dee") if rows.get("dee", {}).get("requests") == 2 else None

    dee = wait_for(recorded, timeout=30, interval=0.5, what="two requests of dee in the usage database")
    assert dee["tokens_in"] > 0 and dee["tokens_out"] > 0
    listed = {r["name"]: r for r in json.loads(st.doit("keys", "list", "--json").stdout)["keys"]}
    assert listed["dee"]["requests_this_period"] == 2 and listed["dee"]["last_use"] is not None


def test_over_its_budget_a_member_gets_429_naming_the_reset_on_every_replica(st):
    key = create(st, "eve", "--budget", "0.00001", "--period", "day")  # one answer of the double spends more
    assert ask(st, LEAN_CHAT, key, "spend").status_code == 200
    refused_everywhere(st, key, 429, "the key over its budget")
    refused = ask(st, LITELLM_MESSAGES, key)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert "budget of $1e-05 per day" in refused.json()["error"]["message"] and "resets at" in refused.text
    assert int(refused.headers["retry-after"]) > 0


def test_over_its_tokens_per_minute_a_member_gets_429_on_every_replica(st):
    key = create(st, "fay", "--tpm", "2")  # one answer of the double takes 3 tokens
    assert ask(st, LEAN_CHAT, key, "tokens").status_code == 200
    refused_everywhere(st, key, 429, "the key over its tpm")
    refused = ask(st, LEAN_MESSAGES, key)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert "2 tokens per minute" in refused.text and 0 < int(refused.headers["retry-after"]) <= 61


@pytest.mark.parametrize("st", ["sqlite"], indirect=True)  # the file's damage; PostgreSQL's outage: the next test
@pytest.mark.parametrize("damage", ["corrupt", "link"])
def test_a_broken_key_database_refuses_member_keys_and_the_gateway_stays_up(st, tmp_path, damage):
    key = create(st, f"gus-{damage}")
    assert ask(st, LEAN_CHAT, key).status_code == 200
    db = st.paths.keys_db
    aside = tmp_path / "aside"
    aside.mkdir()
    for suffix in ("", "-wal", "-shm"):
        part = db.with_name(db.name + suffix)
        if part.exists():
            part.rename(aside / part.name)
    if damage == "corrupt":
        db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
    else:
        db.symlink_to(aside / db.name)  # a link out of .router/, to the real database
    refused_everywhere(st, key, 503, "a member key while the database is broken")
    for route in (LEAN_CHAT, LITELLM_MESSAGES):
        resp = ask(st, route, key)
        assert resp.status_code == 503 and "member keys are refused" in resp.text
        assert ask(st, route, st.master_key).status_code == 200  # the master key still works: never opened up, never down
    doctor = st.doit("doctor")
    assert "member keys are refused" in doctor.output and "keys" in doctor.output
    db.unlink()
    for part in aside.iterdir():
        part.rename(db.with_name(part.name))
    refused_everywhere(st, key, 200, "nothing: the member key served again once the database reads")


@pytest.mark.parametrize("st", ["postgres"], indirect=True)
def test_postgres_stopped_mid_run_refuses_member_keys_and_the_gateway_stays_up(st):
    from tasks.stack import process

    key = create(st, "hal")
    assert ask(st, LEAN_CHAT, key).status_code == 200
    assert st.doit("status").output.count("postgres") >= 1
    stopped = process.stop(st.paths.record("postgres"), timeout=30)  # as `doit down` stops it
    assert stopped.outcome == "stopped", stopped.message
    refused_everywhere(st, key, 503, "a member key while PostgreSQL is down")
    for route in (LEAN_CHAT, LITELLM_MESSAGES):
        resp = ask(st, route, key)
        assert resp.status_code == 503 and "PostgreSQL key store" in resp.text and "member keys are refused" in resp.text
        assert ask(st, route, st.master_key).status_code == 200  # never opened up, never down
    assert ask(st, LEAN_MESSAGES, key).json()["type"] == "error"  # in the request's protocol shape
    doctor = st.doit("doctor")
    assert "PostgreSQL key store" in doctor.output and "member keys are refused" in doctor.output
    made = st.doit("keys", "create", "ivy")
    assert made.returncode == 1 and "cannot be reached" in made.stderr and "Traceback" not in made.output
    up = st.doit("up")
    assert up.returncode == 0, up.output
    refused_everywhere(st, key, 200, "nothing: the member key served again once PostgreSQL is back")
