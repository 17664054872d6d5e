"""Two LiteLLM replicas on one port sharing router state through a real Redis (issue 12), on one
stack of this module's own (mainline double, real LiteLLM, a redis-server started here with a
password). Tests run in file order: up, spread, the shared rpm limit, kills, a swap under load."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess

import httpx
import pytest

from tasks.stack.watch.redisping import ping
from tests.integration.conftest import make_stack, start_alone
from tests.integration.test_profiles import chat, status
from tests.integration.traffic import Traffic
from tests.support import free_port, group_gone, wait_for

RPM = 6  # the limited model's requests per minute
REDIS_PASSWORD = "test-redis-secret"
MODELS = f"""models:
  - {{name: limited, model: gpt-5.5, params: {{rpm: {RPM}}}}}
router_settings:
  routing_strategy: usage-based-routing-v2   # the strategy whose pre-call check enforces rpm
  num_retries: 0   # a rejection is final (a retry would wait for its retry-after: 60 s)
"""


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
    port, data = free_port(), tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_PASSWORD,
                             "--save", "", "--appendonly", "no", "--dir", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: ping("127.0.0.1", port, REDIS_PASSWORD) == "PONG", what="redis-server answering PING")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def write_config(st, redis_port: int, extra: str = "") -> None:
    st.write_local(MODELS + f"redis:\n  url: redis://127.0.0.1:{redis_port}\n  password_env: TEST_REDIS_PASSWORD\n"
                   + extra)
    text = st.paths.local_config.read_text()
    st.paths.local_config.write_text(text.replace("litellm:\n", "litellm:\n  replicas: 2\n", 1))


@pytest.fixture(scope="module")
def st(tmp_path_factory, github, redis_server):
    stack = make_stack(tmp_path_factory, github, "replicas", env={"TEST_REDIS_PASSWORD": REDIS_PASSWORD})
    write_config(stack, redis_server)
    stack.seed_accounts("codex")
    up = stack.doit("up")
    assert up.returncode == 0, up.output
    yield stack
    stack.doit("down")
    stack.kill_all()
    rec = stack.record("litellm#2")
    if rec:
        try:
            os.killpg(rec["pgid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def answering_pids(st, count: int = 24) -> list[int]:
    """The instance header of `count` requests, each on a new connection (the kernel spreads connections)."""
    pids = []
    for _ in range(count):
        resp = httpx.get(f"{st.litellm_url}/health/liveliness", timeout=10)
        assert resp.status_code == 200, resp.text
        pids.append(int(resp.headers["x-flowgate-instance"]))
    return pids


def gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def server_pids(st) -> dict[str, int]:
    """Each replica's LiteLLM server pid (the launcher's child), from `doit status --json`."""
    _, svc = status(st)
    return {name: svc[name]["service_pid"] for name in ("litellm", "litellm#2")}


def test_both_replicas_run_and_serve_the_one_port(st):
    code, svc = status(st)
    assert code == 0, svc
    for name in ("litellm", "litellm#2"):
        assert svc[name]["state"] == "running" and svc[name]["ready"], svc[name]
    assert svc["litellm"]["address"] == svc["litellm#2"]["address"]
    assert svc["litellm"]["pid"] != svc["litellm#2"]["pid"]
    table = st.doit("status").stdout
    assert "litellm#2" in table
    logs = st.doit("logs", "litellm", "-n", "3").stdout
    assert "litellm.log <==" in logs and "litellm#2.log <==" in logs
    servers = set(server_pids(st).values())
    assert set(answering_pids(st)) == servers, "both replicas answer on the shared port"
    rendered = st.paths.litellm_config.read_text()
    assert "redis_host: 127.0.0.1" in rendered.replace('"', "") and "os.environ/TEST_REDIS_PASSWORD" in rendered
    assert REDIS_PASSWORD not in rendered  # resolved by LiteLLM at start, never written


def redis_count(port: int, kind: str = "rpm") -> int:
    """The router's shared usage counter of this minute (`<id>:<model>:rpm:<HH-MM>`) as Redis holds it."""
    cli = ["redis-cli", "-p", str(port), "-a", REDIS_PASSWORD, "--no-auth-warning"]
    keys = subprocess.run([*cli, "--scan", "--pattern", f"*:{kind}:*"], capture_output=True, text=True).stdout.split()
    keys = [k for k in keys if not k.startswith("global_router:")]  # the router's own stats, not the limiter's
    return sum(int(subprocess.run([*cli, "get", k], capture_output=True, text=True).stdout.strip() or 0) for k in keys)


def test_rpm_limit_is_shared_through_redis(st, redis_server):
    # The router counts per minute ("%H-%M" keys): do not straddle a minute boundary.
    wait_for(lambda: datetime.datetime.now(datetime.timezone.utc).second < 30, timeout=40, interval=0.5,
             what="the start of a minute")
    _, svc = status(st)
    ports = [svc[name]["probe_port"] for name in ("litellm", "litellm#2")]
    extra, codes = 3, []
    for i in range(RPM + extra):
        # Each replica in turn, on its private port. LiteLLM counts in memory and pushes the count to
        # Redis within a second (DEFAULT_REDIS_SYNC_INTERVAL), reading the shared total back: wait for it.
        resp = httpx.post(f"http://127.0.0.1:{ports[i % 2]}/v1/chat/completions", timeout=60,
                          headers={"Authorization": f"Bearer {st.master_key}"},
                          json={"model": "limited", "messages": [{"role": "user", "content": f"hi {i}"}]})
        codes.append(resp.status_code)
        accepted = codes.count(200)
        wait_for(lambda: redis_count(redis_server) == accepted, timeout=10, interval=0.1,
                 what=f"Redis counting {accepted} request(s)")
    # Each replica alone would have let 2 x its share through: the count is shared.
    assert codes == [200] * RPM + [429] * extra, codes


def test_a_killed_replica_leaves_the_other_serving_and_up_restores_it(st):
    rec = st.record("litellm#2")
    os.killpg(rec["pgid"], signal.SIGKILL)  # the launcher and its server: nothing restarts it
    wait_for(lambda: group_gone(rec["pgid"]), what="replica 2 gone")
    survivor = server_pids(st)["litellm"]
    assert set(answering_pids(st, 12)) == {survivor}
    _, svc = status(st)
    assert svc["litellm#2"]["state"] == "crashed" and not svc["_"]["ready"]
    up = st.doit("up")
    assert up.returncode == 0, up.output
    assert "litellm#2: restarted" in up.stdout
    pids = server_pids(st)
    assert set(answering_pids(st)) == set(pids.values())


def test_the_launcher_restarts_a_replica_whose_server_dies(st):
    before = server_pids(st)
    os.kill(before["litellm"], signal.SIGKILL)
    # A connection that reaches the dying server's queue before the kernel has torn it down is reset:
    # what is asserted is that once it is gone, the other replica serves every new connection.
    wait_for(lambda: gone(before["litellm"]), what="the killed server to be gone")
    assert set(answering_pids(st, 8)) == {before["litellm#2"]}  # the other one serves meanwhile
    wait_for(lambda: (lambda s: s["litellm"]["ready"] and s["litellm"]["service_pid"] not in (None, before["litellm"]))
             (status(st)[1]), timeout=120, interval=0.2, what="replica 1 restarted by its launcher")
    _, svc = status(st)
    assert svc["litellm"]["restarts"] == 1 and svc["litellm#2"]["restarts"] == 0


def test_config_change_swaps_replicas_one_by_one_without_failed_requests(st, redis_server):
    old = {name: st.pid(name) for name in ("litellm", "litellm#2")}
    write_config(st, redis_server, "litellm_settings:\n  request_timeout: 555\n")
    with Traffic(st) as traffic:
        wait_for(lambda: len(traffic.results) >= 5, what="traffic before the change")
        up = st.doit("up")
    assert up.returncode == 0, up.output
    assert "litellm: swapped" in up.stdout and "litellm#2: swapped" in up.stdout
    failed = [r for r in traffic.results if r[1] is not None]
    assert not failed, f"{len(failed)} of {len(traffic.results)} requests failed: {failed[:3]}"
    swaps = [e for e in st.events("swap") if e["result"] == "ok"]
    assert [(e["service"], e["old_pid"]) for e in swaps[-2:]] == [("litellm", old["litellm"]),
                                                                  ("litellm#2", old["litellm#2"])]
    assert set(answering_pids(st)) == set(server_pids(st).values())


def test_a_cliproxy_restart_moves_both_replicas_without_failed_requests(st):
    old = {name: st.pid(name) for name in ("litellm", "litellm#2", "cliproxy")}
    with Traffic(st) as traffic:
        wait_for(lambda: len(traffic.results) >= 5, what="traffic before the restart")
        result = st.doit("restart", "cliproxy")
    assert result.returncode == 0, result.output
    assert "cliproxy: switched" in result.stdout
    failed = [r for r in traffic.results if r[1] is not None]
    assert not failed, f"{len(failed)} of {len(traffic.results)} requests failed: {failed[:3]}"
    swapped = [e["service"] for e in st.events("swap") if e["result"] == "ok"][-4:]
    assert swapped == ["litellm", "litellm#2", "litellm", "litellm#2"]  # to the bridge and back, one by one
    assert all(st.pid(name) != pid for name, pid in old.items()) and st.record("cliproxy#bridge") is None
    assert set(answering_pids(st)) == set(server_pids(st).values())


def test_fewer_replicas_stop_the_extra_one_and_down_stops_all(st, redis_server):
    write_config(st, redis_server, "litellm_settings:\n  request_timeout: 555\n")
    st.paths.local_config.write_text(st.paths.local_config.read_text().replace("replicas: 2", "replicas: 1"))
    extra = st.record("litellm#2")
    up = st.doit("up")
    assert up.returncode == 0, up.output
    assert group_gone(extra["pgid"]) or wait_for(lambda: group_gone(extra["pgid"]), what="replica 2 stopped")
    assert st.record("litellm#2") is None
    code, svc = status(st)
    assert code == 0 and "litellm#2" not in svc
    down = st.doit("down")
    assert down.returncode == 0, down.output
    assert json.loads(st.doit("status", "--json").stdout)["ready"] is False


def test_managed_redis_lifecycle(tmp_path_factory, github):
    """redis.managed: FlowGate's third service, on its own home (started alone: no LiteLLM boot)."""
    home = make_stack(tmp_path_factory, github, "managed-redis")
    port = free_port()
    home.write_local(f"redis:\n  managed: true\n  port: {port}\n")
    try:
        start_alone(home, "redis", port)
        secret = home.paths.secret("redis_password").read_text().strip()
        assert ping("127.0.0.1", port, secret) == "PONG"
        assert ping("127.0.0.1", port, None).startswith("NOAUTH")  # the password is required
        conf = home.paths.router / "redis" / "redis.conf"
        assert oct(conf.stat().st_mode & 0o777) == "0o600" and "bind 127.0.0.1" in conf.read_text()
        assert secret not in " ".join(json.loads(home.paths.record("redis").read_text())["argv"])
        rendered = home.doit("render")
        assert rendered.returncode == 0, rendered.output
        lite = home.paths.litellm_config.read_text()
        assert f"redis_port: {port}" in lite and secret in lite  # LiteLLM's router points at it
        logs = home.doit("logs", "redis")
        assert logs.returncode == 0 and "Ready to accept connections" in logs.stdout, logs.output
        again = home.doit("start:redis")
        assert again.returncode == 0 and "redis: started" not in again.stdout  # up to date
        rec = home.record("redis")
        down = home.doit("down")
        assert down.returncode == 0, down.output
        assert group_gone(rec["pgid"]) and home.record("redis") is None
        assert ping("127.0.0.1", port, secret) == "Connection refused"
    finally:
        rec = home.record("redis")
        if rec:
            os.killpg(rec["pgid"], signal.SIGKILL)
