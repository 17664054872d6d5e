"""postgres.managed: the member keys' PostgreSQL as a service of the stack (started alone here: no
LiteLLM boot), made by initdb, supervised, probed by a real login, shown by status, stopped by down;
and a config without it never mentions it."""

from __future__ import annotations

import json
import os
import signal
import stat

import psycopg

from tests.integration.conftest import make_stack, start_alone
from tests.integration.test_profiles import status
from tests.postgres_server import require_postgres
from tests.support import free_port, group_gone, wait_for


def login(port: int, password: str | None):
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=flowgate dbname=postgres", password=password,
                             connect_timeout=2) as db:
            return db.execute("SELECT 1").fetchone()[0]
    except psycopg.Error as exc:
        return str(exc)


def test_managed_postgres_lifecycle(tmp_path_factory, github):
    home = make_stack(tmp_path_factory, github, "managed-postgres")
    require_postgres(home.paths)
    port = free_port()
    home.write_local(f"keys:\n  store: postgres\npostgres:\n  managed: true\n  port: {port}\n")
    try:
        start_alone(home, "postgres", port)
        secret = home.paths.secret("postgres_password").read_text().strip()
        assert login(port, secret) == 1
        assert "password" in login(port, None) or "authentication" in login(port, None)  # a password is required
        assert login(port, "wrong").count("password authentication failed") == 1
        data = home.paths.router / "postgres"
        for folder in (data, data / "data", data / "run"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        assert secret not in " ".join(json.loads(home.paths.record("postgres").read_text())["argv"])
        assert not list(data.glob(".pw.*"))  # initdb's password file is gone
        made = home.doit("keys", "create", "ana")
        assert made.returncode == 0, made.output
        assert "ana" in home.doit("keys").stdout and not home.paths.keys_db.exists()
        doctor = home.doit("doctor")
        assert "1 active member key(s) of 1 in the PostgreSQL key store at 127.0.0.1:" in doctor.output, doctor.output
        logs = home.doit("logs", "postgres")
        assert logs.returncode == 0 and "ready to accept connections" in logs.stdout, logs.output
        again = home.doit("start:postgres")
        assert again.returncode == 0 and "postgres: started" not in again.stdout  # up to date
        rec = home.record("postgres")
        held = psycopg.connect(f"host=127.0.0.1 port={port} user=flowgate dbname=postgres", password=secret)  # a gateway's
        down = home.doit("down")
        assert down.returncode == 0, down.output
        assert "stopped" in down.stdout and "killed" not in down.stdout  # a fast shutdown, a connection held or not
        held.close()
        assert group_gone(rec["pgid"]) and home.record("postgres") is None
        assert "refused" in login(port, secret) or "failed" in login(port, secret)
        restarted = home.doit("start:postgres")  # the cluster is kept: the key is still there
        assert restarted.returncode == 0, restarted.output
        wait_for(lambda: status(home)[1]["postgres"]["ready"], timeout=60, what="postgres ready again")
        assert "ana" in home.doit("keys").stdout
        assert home.doit("down").returncode == 0
    finally:
        rec = home.record("postgres")
        if rec:
            os.killpg(rec["pgid"], signal.SIGKILL)


def test_without_postgres_in_the_config_it_appears_nowhere(doit, paths):
    assert doit("secrets").returncode == 0  # the config read (as test_cli_surface's Redis test does)
    for args in (("down",), ("logs",)):
        result = doit(*args)
        assert result.returncode == 0, result.output
        assert "postgres.log" not in result.output and "postgres is" not in result.output, (args, result.output)
    assert not paths.secret("postgres_password").exists()
    paths.local_config.write_text("postgres:\n  managed: true\n")
    assert doit("secrets").returncode == 0 and paths.secret("postgres_password").exists()
    assert "postgres.log" in doit("logs").stdout and "postgres is not running" in doit("down").stdout
