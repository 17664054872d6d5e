"""tasks.accounts.management against the CLIProxyAPIPlus double over real HTTP: every failure is
one FlowgateError at once, never a retry."""

from __future__ import annotations

import time

import pytest

from tasks.accounts.management import (
    Management,
    ManagementError,
    RouteMissing,
    _translate,
)
from tasks.base.errors import FlowgateError
from tests.support import free_port
from tests.unit.doubles.test_cliproxy_double import MGMT_KEY, start_double  # noqa: F401,F811  (fixture)


def client(d, key=MGMT_KEY) -> Management:
    return Management("127.0.0.1", d.port, key, timeout=5.0)


def test_lists_auth_files_with_the_key(start_double):
    d = start_double()
    assert client(d).get("auth-files") == {"files": []}
    started = client(d).get("codex-auth-url", is_webui="true")
    assert started["status"] == "ok" and started["state"]


def test_wrong_key_fails_at_once_with_what_to_do(start_double):
    d = start_double()
    begin = time.monotonic()
    with pytest.raises(ManagementError) as err:
        client(d, key="mgmt-wrong").get("auth-files")
    assert time.monotonic() - begin < 1.0
    assert err.value.status == 401
    assert "refused FlowGate's management key (401 invalid management key)" in err.value.message
    assert "doit restart cliproxy" in err.value.hint


def test_management_disabled_is_told_apart_from_a_missing_route(start_double):
    disabled = start_double(secret=None, name="off")
    with pytest.raises(ManagementError) as err:
        client(disabled).get("codex-auth-url")
    assert not isinstance(err.value, RouteMissing)
    assert "management API of CLIProxyAPI is disabled" in err.value.message

    on = start_double(name="on")
    with pytest.raises(RouteMissing) as err:
        client(on).get("xai-auth-url")
    assert err.value.route == "xai-auth-url" and "has no /xai-auth-url management route" in err.value.message


def test_a_json_404_is_an_answer_not_a_missing_route(start_double):
    d = start_double()
    with pytest.raises(ManagementError) as err:
        client(d).request("DELETE", "auth-files", query={"name": "nope.json"})
    assert not isinstance(err.value, RouteMissing) and err.value.status == 404 and err.value.error == "auth file not found"


def test_connection_refused_says_the_binary_is_not_running():
    begin = time.monotonic()
    with pytest.raises(FlowgateError) as err:
        Management("127.0.0.1", free_port(), MGMT_KEY).get("auth-files")
    assert time.monotonic() - begin < 1.0
    assert "not running" in err.value.message and "connection refused" in err.value.message
    assert "doit up" in err.value.hint


@pytest.mark.parametrize("error, expected", [
    ("remote management disabled", "refuses management calls from this address"),
    ("remote management key not set", "disabled: it has no management key"),
    ("IP banned due to too many failed attempts. Try again in 29m59s", "refused the management call (403 IP banned"),
])
def test_403_answers(error, expected):
    assert expected in _translate(403, error, "GET", "auth-files").message


def test_the_key_is_never_part_of_an_error(start_double):
    d = start_double()
    with pytest.raises(ManagementError) as err:
        client(d, key="mgmt-do-not-print-me").get("auth-files")
    assert "mgmt-do-not-print-me" not in err.value.render()


def test_a_trickling_or_huge_answer_is_one_clear_error():
    """A peer sending a byte at a time, or 17 MiB of JSON: bounded, and never read as "no accounts"."""
    from tasks.base.localhttp import MAX_ANSWER
    from tests.unit.base.test_localhttp import _raw_server

    def trickle(conn, done):
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n{")
        while not done.wait(0.05):
            conn.sendall(b" ")

    def flood(conn, done):
        conn.sendall(b'HTTP/1.0 200 OK\r\n\r\n{"files": [' + b" " * (MAX_ANSWER + 1024 * 1024) + b"]}")

    for answer, said in ((trickle, "did not answer within 0.5 s"), (flood, "answer too large")):
        srv, done = _raw_server(answer)
        try:
            with pytest.raises(FlowgateError) as err:
                Management("127.0.0.1", srv.getsockname()[1], MGMT_KEY, timeout=0.5 if answer is trickle else 10).get("auth-files")
            assert said in err.value.message, err.value.message
        finally:
            done.set()
            srv.close()


def test_a_deeply_nested_answer_is_one_clear_error():
    """100,000 nested lists crashed `status` and `accounts` with a RecursionError traceback."""
    from tests.unit.base.test_localhttp import _raw_server

    def nested(conn, done):
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"[" * 100_000 + b"]" * 100_000)

    srv, done = _raw_server(nested)
    try:
        with pytest.raises(FlowgateError) as err:
            Management("127.0.0.1", srv.getsockname()[1], MGMT_KEY, timeout=10).get("auth-files")
        assert "Traceback" not in err.value.render()
    finally:
        done.set()
        srv.close()
    from tasks.accounts import quota_parse

    assert quota_parse.codex("[" * 100_000 + "]" * 100_000, 0) is None


def test_for_stack_proves_the_port_is_this_checkouts_before_any_call(start_double, paths):
    """Issue 31, item 22: another checkout's CLIProxyAPI on the configured port is never called."""
    import os

    from tasks.config.load import load_stack
    from tests.support import record_as_ours

    d = start_double()
    paths.local_config.write_text(f"cliproxy:\n  port: {d.port}\n")
    stack = load_stack(paths)
    secret = paths.secret("cliproxy_management_key")
    secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret.write_text(MGMT_KEY + "\n")
    os.chmod(secret, 0o600)
    with pytest.raises(FlowgateError) as err:
        Management.for_stack(paths, stack).request("PATCH", "auth-files/status", body={"name": "a", "disabled": True})
    assert f"is not this checkout's ({paths.home}): it is pid {d.proc.pid} (" in err.value.message
    assert str(d.tmp_path) in err.value.message and "nothing was sent" in err.value.message
    assert "stop that process, or give this checkout another port" in err.value.hint
    record_as_ours(paths, "cliproxy", d.proc.pid, d.port)  # the same double, now this home's
    assert Management.for_stack(paths, stack).get("auth-files") == {"files": []}


def test_the_usage_queue_is_a_list_and_anything_else_one_clear_error(start_double):
    """Issue 29: GET usage-queue answers a JSON array (tasks.usage.ledger pops it); the Plus line has
    no such route."""
    from tests.unit.base.test_localhttp import _raw_server

    with pytest.raises(RouteMissing):
        client(start_double()).get_list("usage-queue", count=1)
    d = start_double(env={"CLIPROXY_DOUBLE_EDITION": "mainline"}, name="mainline")
    assert client(d).get_list("usage-queue", count=5) == []
    with pytest.raises(ManagementError, match="400"):
        client(d).get_list("usage-queue", count=0)  # the binary's own refusal, translated
    with pytest.raises(ManagementError, match="refused FlowGate's management key"):
        client(d, key="wrong-key").get_list("usage-queue", count=1)

    def an_object(conn, done):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"records\": []}")

    srv, done = _raw_server(an_object)
    try:
        with pytest.raises(ManagementError, match="not the expected JSON list"):
            Management("127.0.0.1", srv.getsockname()[1], MGMT_KEY, timeout=10).get_list("usage-queue", count=1)
    finally:
        done.set()
        srv.close()
