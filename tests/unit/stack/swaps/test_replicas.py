"""Replicas and the shared Redis, without processes: instance names, run files, rendered settings, PING."""

from __future__ import annotations

import json
import socket
import threading

import yaml

from tasks.services import secrets
from tasks.config.load import load_stack
from tasks.config.view import litellm, redis
from tasks.config.names import litellm_instances, service_of
from tasks.services.litellm import litellm_launch, redis_router_settings, render_litellm_local
from tasks.stack import process
from tasks.stack.swaps import replicas
from tasks.stack.watch.redisping import ping

ALL_SECRETS = {"redis": {"managed": True}}  # every secret generated, Redis's password included



def _stack(paths, extra: str = "") -> dict:
    paths.local_config.write_text(extra)
    return load_stack(paths)


def test_instance_names_keep_the_single_one_as_it_was(paths):
    assert litellm_instances(None) == ["litellm"]
    assert litellm_instances(_stack(paths)) == ["litellm"]
    stack = _stack(paths, "litellm:\n  replicas: 3\n")
    assert litellm_instances(stack) == ["litellm", "litellm#2", "litellm#3"]
    assert [service_of(n) for n in litellm_instances(stack)] == ["litellm"] * 3
    assert not replicas.several(litellm(_stack(paths))) and replicas.several(litellm(stack)) and not replicas.several(None)


def test_only_a_replica_launch_says_how_many_share_the_port(paths):
    one = litellm_launch(paths, _stack(paths), environ={})
    assert "FLOWGATE_LITELLM_REPLICAS" not in one.env
    two_stack = _stack(paths, "litellm:\n  replicas: 2\n")
    first, second = (litellm_launch(paths, two_stack, environ={}, instance=n) for n in ("litellm", "litellm#2"))
    assert first.env["FLOWGATE_LITELLM_REPLICAS"] == "2"
    assert first.inputs_hash == one.inputs_hash  # a new count does not restart the running instance
    assert second.argv[second.argv.index("--service") + 1] == "litellm#2"


def test_recorded_and_extra_instances(paths):
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("litellm.json", "litellm#2.json", "litellm#3.json", "litellm#2.123.state.json",
                 "litellm#2.next.json", "cliproxy.json"):
        (paths.run_dir / name).write_text("{}")
    assert replicas.recorded(paths) == ["litellm", "litellm#2", "litellm#3"]
    assert replicas.extras(paths, litellm_instances(_stack(paths, "litellm:\n  replicas: 2\n"))) == ["litellm#3"]


def test_probe_target_reads_the_worker_file(paths):
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    record = process.ProcessRecord(service="litellm#2", pid=4242, pgid=4242, create_time=0.0, argv=[], cwd=None,
                                   inputs_hash="x", started_at="", log=None, meta={"run_dir": str(paths.run_dir)})
    assert replicas.probe_target(record) is None  # not reported yet
    (paths.run_dir / "litellm#2.4242.worker.json").write_text(json.dumps({"pid": 1, "probe_port": 31337}))
    assert replicas.probe_target(record) == ("127.0.0.1", 31337)
    stack = _stack(paths, "litellm:\n  replicas: 2\n")
    assert replicas.probe_address(replicas.several(litellm(stack)), record, "127.0.0.1", 4000) == ("127.0.0.1", 31337)
    assert replicas.probe_address(replicas.several(litellm(_stack(paths))), record, "127.0.0.1", 4000) == ("127.0.0.1", 4000)


def test_redis_url_renders_host_port_and_an_env_reference(paths):
    secrets.ensure_all(paths, ALL_SECRETS)
    stack = _stack(paths, "redis:\n  url: redis://cache.example:6380\n  password_env: TEAM_REDIS\n")
    settings = redis_router_settings(paths, stack, secrets.read_all(paths, ALL_SECRETS))
    # not redis_url: LiteLLM 1.108.14 ignores redis_password beside a URL
    assert settings == {"redis_host": "cache.example", "redis_port": 6380, "redis_password": "os.environ/TEAM_REDIS"}
    rendered = yaml.safe_load(render_litellm_local(paths, stack, secrets.read_all(paths, ALL_SECRETS)))
    assert rendered["router_settings"]["redis_host"] == "cache.example"


def test_redis_password_file_and_tls(paths):
    (paths.home / "redis.key").write_text("s3cret\n")
    stack = _stack(paths, "redis:\n  url: rediss://cache.example\n  password_file: redis.key\n")
    assert redis_router_settings(paths, stack, {}) == {"redis_host": "cache.example", "redis_port": 6379,
                                                       "cache_kwargs": {"ssl": True}, "redis_password": "s3cret"}


def test_managed_redis_uses_the_generated_password_and_no_redis_renders_nothing(paths):
    stack = _stack(paths, "redis:\n  managed: true\n  port: 6450\n")
    assert redis_router_settings(paths, stack, {"redis_password": "pw"}) == {
        "redis_host": "127.0.0.1", "redis_port": 6450, "redis_password": "pw"}
    assert redis_router_settings(paths, _stack(paths), {}) == {}


def test_ping_sends_auth_first_and_reports_errors():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    got = []

    def answer():
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(1024))
            conn.sendall(b"-WRONGPASS invalid password\r\n+PONG\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    assert ping("127.0.0.1", server.getsockname()[1], "pw") == "WRONGPASS invalid password"
    thread.join()
    server.close()
    assert got[0].startswith(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*1\r\n$4\r\nPING\r\n")


def test_managed_redis_is_a_service_only_when_managed(paths):
    from tasks.config.names import enabled_services

    assert "redis" not in enabled_services(_stack(paths))
    assert enabled_services(_stack(paths, "redis:\n  managed: true\n"))[-1] == "redis"


def test_redis_launch_keeps_the_password_off_the_command_line(paths, tmp_path):
    import pytest

    from tasks.base.errors import FlowgateError
    from tasks.services.redis import config_text, redis_launch

    secrets.ensure_all(paths, ALL_SECRETS)
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    stack = _stack(paths, f"redis:\n  managed: true\n  port: 6451\n  binary: {fake}\n")
    launch = redis_launch(paths, redis(stack), environ={})
    password = secrets.read(paths, "redis_password")
    assert password not in " ".join(launch.argv) and launch.argv[-2] == str(fake)
    assert "redis://127.0.0.1:6451" in launch.argv
    text = config_text(paths, redis(stack).port, password)
    assert "bind 127.0.0.1" in text and f'requirepass "{password}"' in text and "port 6451" in text
    missing = _stack(paths, "redis:\n  managed: true\n  binary: /nonexistent/redis-server\n")
    with pytest.raises(FlowgateError, match="does not exist"):
        redis_launch(paths, redis(missing), environ={})
