"""Helpers every test module shares: free ports and waiting for a condition (never a fixed sleep)."""

from __future__ import annotations

import random
import socket
import time

# Ports handed out below the kernel's ephemeral range (32768+ on Linux): a port found free by
# binding it and closing again cannot then be taken by some outgoing connection's ephemeral port
# before the service under test binds it. Each is handed out once per test session.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1", family: int = socket.AF_INET) -> int:
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found in {_PORT_RANGE} on {host}")


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something true (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


def group_gone(pgid: int) -> bool:
    """No live (non-zombie) process left in the group: init reaps orphans only after a while."""
    import os

    import psutil

    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return False
        except (ProcessLookupError, psutil.Error):
            continue
    return True


def down_and_check(st):
    """`doit down` on a test stack; asserts it succeeded and left no live process in any group it ran."""
    pgids = [st.record(s)["pgid"] for s in ("litellm", "cliproxy")]
    result = st.doit("down")
    assert result.returncode == 0, result.output
    for pgid in pgids:
        assert group_gone(pgid)
    return result


def seed_accounts(auths_dir, *providers: str) -> None:
    """Account files as a finished login leaves them (the CLIProxyAPI double's own format, 0600 from
    the first byte), for stacks and benches that are not about logging in."""
    import json

    from tests.fakes.cliproxy_double import build_account

    auths_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for provider in providers:
        name, data = build_account("anthropic" if provider == "claude" else provider, f"{provider}@example.com", "", {})
        path = auths_dir / name
        path.touch(mode=0o600)
        path.write_text(json.dumps(data))


def record_as_ours(paths, service: str, pid: int, port: int, host: str = "127.0.0.1") -> None:
    """A run record in `paths` for a test double started outside FlowGate (`pid` listening on `port`),
    as `doit up` writes one: management calls prove the port's process is this home's first."""
    from tasks.stack import process

    record = process.make_record(pid, service=service, inputs_hash="test-double", log=str(paths.log(service)),
                                 meta={"host": host, "port": port})
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    process.write_record(paths.record(service), record)


def write_account(auths_dir, provider: str, email: str, plan: str = "plus", *, proxy_url: str | None = None,
                  disabled: bool = False) -> str:
    """An OAuth account file, as a finished login leaves it, that the CLIProxyAPI double and the real
    v7 binary both load and use without refreshing it (expiry a year ahead, refreshed now): codex with
    an id_token whose claims carry the plan (`chatgpt_plan_type`, which picks the models) and the
    account id; claude with an `sk-ant-oat` token (what the binary takes for OAuth). `proxy_url` sends
    the account's upstream traffic through that proxy (the real binary's per-account proxy, used by
    the tests' MITM). Claude files carry the profile a real login stores (account and organization
    uuid, device id), codex and claude files `disabled`: the binary rewrites a file lacking them at
    its first use, and any rewrite ends every account's cooldowns (docs/dev/cliproxy-parity.md).
    Written 0600 atomically; returns the file name (read its auth_index from GET auth-files)."""
    import hashlib
    import json
    import os
    import secrets
    import uuid
    from datetime import datetime, timedelta, timezone

    from tests.fakes.cliproxy_double import fake_jwt, safe_name_part

    now = datetime.now(timezone.utc)
    stamp = {"last_refresh": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "expired": (now + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    token = secrets.token_hex(16)
    if provider == "codex":
        account_id = str(uuid.uuid4())
        name = f"codex-{hashlib.sha256(account_id.encode()).hexdigest()[:8]}-{safe_name_part(email)}-{plan}.json"
        claims = {"email": email, "exp": int((now + timedelta(days=365)).timestamp()), "iat": int(now.timestamp()),
                  "https://api.openai.com/auth": {"chatgpt_account_id": account_id, "chatgpt_plan_type": plan}}
        data = {"type": "codex", "email": email, "id_token": fake_jwt(claims), "access_token": f"codex-access-{token}",
                "refresh_token": f"codex-refresh-{token}", "account_id": account_id, **stamp}
    elif provider == "claude":
        name = f"claude-{safe_name_part(email)}.json"
        account = str(uuid.uuid4())  # the profile a real login fetched: without it the binary fetches it
        data = {"type": "claude", "email": email, "access_token": f"sk-ant-oat01-{token}",  # and rewrites the file
                "refresh_token": f"sk-ant-ort01-{token}", "account_uuid": account, "organization_uuid": account,
                "organization_name": "test", "claude_account_profile_checked_at": stamp["last_refresh"],
                "claude_device_ids": [secrets.token_hex(32)], **stamp}
    else:
        raise ValueError(f"write_account: codex or claude, not {provider!r}")
    if proxy_url:
        data["proxy_url"] = proxy_url
    data["disabled"] = disabled  # as the binary writes its files back: without it, it rewrites them at first use
    os.makedirs(auths_dir, mode=0o700, exist_ok=True)
    tmp = os.path.join(auths_dir, f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, os.path.join(auths_dir, name))
    return name
