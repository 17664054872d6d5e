"""Member keys through the running gateway (issue 30), on a stack of this module's own (mainline
double, real LiteLLM, two replicas on one port, the managed Redis), once per key store: the SQLite
file and a real PostgreSQL that FlowGate runs (postgres.managed). A key made by `doit keys create`
passes on both paths within its models, is refused outside them, its rpm and tpm hold across the
replicas (counted in Redis; in each process while Redis is frozen), and a revocation reaches every
replica within a second; the master key keeps working throughout, also while the store cannot be
read. The checks that do not depend on the store (Redis's counters, the real clients) run once."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import make_stack, running
from tests.integration.test_real_clients import npm_clients  # noqa: F401  (the real clients, a fixture)
from tests.postgres_server import require_postgres
from tests.support import free_port, wait_for

LOCAL = """models:
  - {name: gpt-5.5}
  - {name: claude-sonnet-4-6}
redis:
  managed: true
  port: %d
"""


POSTGRES = """keys:
  store: postgres
postgres:
  managed: true
  port: {port}
"""
SQLITE_ONLY = pytest.mark.parametrize("st", ["sqlite"], indirect=True)  # the store plays no part


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def st(tmp_path_factory, github, request):
    stack = make_stack(tmp_path_factory, github, f"member-keys-{request.param}")
    stack.store = request.param
    if request.param == "postgres":
        require_postgres(stack.paths)
    stack.redis_port = free_port()
    stack.write_local(LOCAL % stack.redis_port + (POSTGRES.format(port=free_port()) if request.param == "postgres" else ""))
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


def test_a_members_model_list_and_other_routes_follow_its_patterns(st):
    key = create(st, "pia", "--models", "gpt-5*")
    headers = {"authorization": f"Bearer {key}"}
    listed = httpx.get(f"{st.litellm_url}/v1/models", headers=headers, timeout=30)
    every = httpx.get(f"{st.litellm_url}/v1/models", headers={"authorization": f"Bearer {st.master_key}"}, timeout=30)
    assert listed.status_code == 200 and every.status_code == 200, listed.text
    mine, all_ids = [m["id"] for m in listed.json()["data"]], [m["id"] for m in every.json()["data"]]
    assert mine == [i for i in all_ids if i.startswith("gpt-5")] and "claude-sonnet-4-6" in all_ids
    outside = httpx.post(f"{st.litellm_url}/v1/embeddings", headers=headers, timeout=30,
                         json={"model": "text-embedding-3-small", "input": "x"})
    assert outside.status_code == 403 and "may not use text-embedding-3-small" in outside.text
    # (a model inside its patterns passes the gate: tests/unit/gateway/test_gate.py; not sent here, where
    # the double serves no embeddings and LiteLLM would cool the deployment down for every later test)
    files = httpx.post(f"{st.litellm_url}/v1/files", headers=headers, timeout=30, files={"file": ("a.jsonl", b"{}")},
                       data={"purpose": "batch"})
    assert files.status_code == 403 and "cannot tell which model /v1/files uses" in files.text


def test_over_its_rpm_a_member_gets_429_with_retry_after(st):
    key = create(st, "bo", "--rpm", "1")
    answers = [ask(st, LEAN_CHAT, key) for _ in range(5)]
    assert [r.status_code for r in answers] == [200] + [429] * 4  # counted in Redis, whichever replica answers
    assert all(int(r.headers["retry-after"]) > 0 for r in answers[1:])
    assert answers[1].json()["error"]["code"] == "429"


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


# ---------------------------------------------------------------- each replica on its own (probe ports)

def replica_urls(st) -> list[str]:
    """Each replica's own address: its private probe port, which serves the whole app (tasks.gateway.litellm_server)."""
    import json

    services = {s["service"]: s for s in json.loads(st.doit("status", "--json").stdout)["services"]}
    return [f"http://127.0.0.1:{services[name]['probe_port']}" for name in ("litellm", "litellm#2")]


def ask_at(url: str, key: str, text: str = "hi") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=60, headers={"authorization": f"Bearer {key}"},
                      json={"model": "gpt-5.5", "messages": [{"role": "user", "content": text}]})


def redis_cli(st, *args: str) -> str:
    import subprocess

    from tasks.services.redis import password

    cli = ["redis-cli", "-p", str(st.redis_port), "--no-auth-warning", "-a", password(st.paths), *args]
    return subprocess.run(cli, capture_output=True, text=True, timeout=10).stdout.strip()


def shared_tokens(st, name: str) -> int:
    values = redis_cli(st, "hvals", f"flowgate:member:{name}:tokens").split()
    return sum(int(v) for v in values)


@SQLITE_ONLY
def test_an_rpm_holds_across_the_replicas_exactly(st):
    urls = replica_urls(st)
    key = create(st, "hal", "--rpm", "4")
    answers = [ask_at(urls[i % 2], key, f"rpm {i}") for i in range(7)]
    assert len({r.headers["x-flowgate-instance"] for r in answers}) == 2  # both replicas answered
    assert [r.status_code for r in answers] == [200] * 4 + [429] * 3
    for refused in answers[4:]:
        assert "4 requests per minute" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60


@SQLITE_ONLY
def test_a_tpm_holds_across_the_replicas(st):
    urls = replica_urls(st)
    key = create(st, "ida", "--tpm", "5")  # one answer of the double takes 3 tokens
    assert ask_at(urls[0], key).status_code == 200
    wait_for(lambda: shared_tokens(st, "ida") == 3, timeout=10, interval=0.05, what="3 tokens of ida in Redis")
    assert ask_at(urls[1], key).status_code == 200  # 3 < 5, counted by the other replica
    wait_for(lambda: shared_tokens(st, "ida") == 6, timeout=10, interval=0.05, what="6 tokens of ida in Redis")
    for url in urls + urls:
        refused = ask_at(url, key)
        assert refused.status_code == 429, refused.text
        assert "5 tokens per minute (6 in the last minute)" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 61


def test_a_revocation_takes_effect_on_every_replica_within_a_second(st):
    import time

    urls = replica_urls(st)
    key = create(st, "jo")
    assert all(ask_at(url, key).status_code == 200 for url in urls)
    assert st.doit("keys", "revoke", "jo").returncode == 0
    revoked_at, took = time.monotonic(), {}

    def refused_everywhere():
        for url in urls:
            if url not in took and ask_at(url, key).status_code == 401:
                took[url] = time.monotonic() - revoked_at
        return len(took) == len(urls)

    wait_for(refused_everywhere, timeout=10, interval=0.01, what="every replica refusing the revoked key")
    assert max(took.values()) <= 1.0, took  # the contract: within 1 s of the command's return


@SQLITE_ONLY
def test_with_redis_frozen_limits_are_counted_in_each_replica_and_shared_again_after(st):
    import os
    import signal

    urls = replica_urls(st)
    group = st.record("redis")["pgid"]
    os.killpg(group, signal.SIGSTOP)  # the server and its launcher: Redis stops answering, connections stay open
    try:
        key = create(st, "kai", "--rpm", "2")
        answers = [ask_at(urls[i % 2], key, f"frozen {i}") for i in range(6)]
        # each replica counts alone: 2 per replica, never unlimited, never refused for Redis's sake
        assert sorted(r.status_code for r in answers) == [200] * 4 + [429] * 2, [r.status_code for r in answers]
        assert ask_at(urls[0], st.master_key).status_code == 200
    finally:
        os.killpg(group, signal.SIGCONT)
    logs = "".join(st.paths.log(name).read_text(errors="replace") for name in ("litellm", "litellm#2"))
    assert "counted in each process until Redis answers" in logs

    probe = create(st, "lou", "--rpm", "1000")

    def counted_in_redis(url: str) -> bool:  # each replica tries Redis again a second after its last failure
        before = int(redis_cli(st, "zcard", "flowgate:member:lou:requests") or 0)
        return ask_at(url, probe).status_code == 200 and int(redis_cli(st, "zcard", "flowgate:member:lou:requests")) > before

    for url in urls:
        wait_for(lambda: counted_in_redis(url), timeout=15, interval=0.2, what=f"{url} counting in Redis again")
    key = create(st, "max", "--rpm", "2")
    assert [ask_at(urls[i % 2], key).status_code for i in range(4)] == [200, 200, 429, 429]


# ---------------------------------------------------------------- integrate --key: real clients, a member's key

def helper_run(client: str, folder):
    """The key helper as the client runs it: Codex's `auth` command and args, Claude Code's shell line."""
    import json
    import subprocess
    import tomllib

    if client == "codex":
        auth = tomllib.loads((folder / "config.toml").read_text())["model_providers"]["flowgate"]["auth"]
        return subprocess.run([auth["command"], *auth["args"]], capture_output=True, text=True, timeout=10)
    helper = json.loads((folder / "settings.json").read_text())["apiKeyHelper"]
    return subprocess.run(helper, shell=True, capture_output=True, text=True, timeout=10)


@SQLITE_ONLY
@pytest.mark.parametrize("client", ["codex", "claude"])
def test_integrate_with_a_member_key_wires_a_real_client_counted_for_the_member(st, npm_clients, tmp_path, client):
    import json
    import subprocess

    from tests.integration.test_real_clients import client_env

    name, env = f"nia-{client}", client_env(tmp_path)
    unkept = create(st, f"old-{client}")  # made without --keep: FlowGate has its hash only
    refused = st.doit(f"integrate:{client}", "--key", f"old-{client}", "--apply", env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.output
    assert f"rotate it to wire a client: `uv run doit keys rotate old-{client} --keep`" in refused.stderr
    key = create(st, name, "--keep")
    applied = st.doit(f"integrate:{client}", "--key", name, "--apply", env=env)
    assert applied.returncode == 0, applied.output
    folder = tmp_path / client
    for path in folder.rglob("*"):
        assert not path.is_file() or (key not in path.read_text() and unkept not in path.read_text())
    assert helper_run(client, folder).stdout.strip() == key
    argv = ["exec", "--skip-git-repo-check", "ping as a member"] if client == "codex" else ["-p", "ping as a member"]
    proc = subprocess.run([str(npm_clients / client), *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "ping as a member" in proc.stdout, proc.stdout + proc.stderr

    def counted():
        found = st.doit("usage", "--by", "key", "--json")
        rows = {g["key"]: g for g in json.loads(found.stdout)["by"]["key"]} if found.returncode == 0 else {}
        return rows.get(name, {}).get("requests", 0) >= 1

    wait_for(counted, timeout=30, interval=0.5, what=f"{client}'s requests counted for {name}")
    assert st.doit("keys", "revoke", name).returncode == 0
    gone = helper_run(client, folder)
    assert gone.returncode == 1 and gone.stdout == ""
    assert f"the key of member {name} is not kept here any more (revoked?)" in gone.stderr
