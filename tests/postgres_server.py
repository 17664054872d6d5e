"""A real PostgreSQL for the key-store tests, made and run by FlowGate's own code (tasks.services.postgres:
initdb, the server's command line, the readiness login) outside a stack: the unit tests of the store
use one per session. Skipped, saying why, where PostgreSQL is not installed (.ci/run installs it)."""

from __future__ import annotations

import contextlib
import signal
import subprocess

import pytest

from tasks.config.view import Postgres
from tasks.services import postgres
from tests.support import free_port, wait_for


def settings(port: int) -> Postgres:
    return Postgres(managed=True, url_env=None, url_file=None, port=port, start_timeout=30.0, stop_timeout=10.0,
                    bindir=None, run_as="postgres", host="127.0.0.1")


def require_postgres(paths) -> None:
    from tasks.base.errors import FlowgateError

    try:
        postgres.bindir(paths, settings(5432))
    except FlowgateError as exc:
        pytest.skip(f"no PostgreSQL here: {exc.one_line()}")


@contextlib.contextmanager
def running(paths, port: int | None = None):
    """A managed-style PostgreSQL under `paths` (its .router/postgres); yields the environment
    tasks.gateway.keys.pgstore reads."""
    from tasks.gateway.keys import pgstore
    from tasks.services.secrets import POSTGRES_PASSWORD, ensure

    require_postgres(paths)
    pg = settings(port or free_port())
    ensure(paths, POSTGRES_PASSWORD)
    postgres.ensure_cluster(paths, pg)
    log = open(paths.router / "postgres.log", "ab")
    proc = subprocess.Popen(postgres.server_argv(paths, pg), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    meta = postgres.probe_meta(paths)
    try:
        wait_for(lambda: proc.poll() is not None or postgres.answers("127.0.0.1", pg.port, meta) == "ready",
                 timeout=60, what="the test PostgreSQL")
        assert proc.poll() is None, (paths.router / "postgres.log").read_text()[-2000:]
        yield {pgstore.STORE_ENV: "postgres", pgstore.CONNINFO_ENV: postgres.conninfo(pg.port),
               pgstore.PASSWORD_FILE_ENV: meta["password_file"]}
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: SIGTERM waits for clients to leave
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
