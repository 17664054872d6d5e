"""tasks.services.postgres: finding PostgreSQL's programs, running them as another user under root,
the server's command line (loopback only), and what the gateway is told (never a secret)."""

from __future__ import annotations

import os

import pytest

from tasks.base.errors import FlowgateError
from tasks.gateway.keys import pgstore
from tasks.services import postgres
from tests.postgres_server import settings


def test_a_bindir_without_postgresql_says_what_to_install(paths, tmp_path):
    with pytest.raises(FlowgateError, match="install Debian's postgresql"):
        postgres.bindir(paths, settings(5433)._replace(bindir=str(tmp_path)))


def test_as_root_the_programs_run_as_another_user_with_one_capability():
    if os.geteuid() != 0:
        assert postgres.run_as(settings(5433)) == ([], None)
        return
    prefix, owner = postgres.run_as(settings(5433))
    assert prefix[0].endswith("setpriv") and "--ambient-caps=+dac_read_search" in prefix and owner[0] != 0
    with pytest.raises(FlowgateError, match="does not exist"):
        postgres.run_as(settings(5433)._replace(run_as="no-such-user-here"))


def test_the_server_listens_on_loopback_with_its_socket_in_router(paths):
    try:
        argv = postgres.server_argv(paths, settings(5499))
    except FlowgateError:
        pytest.skip("no PostgreSQL here")
    assert "listen_addresses=127.0.0.1" in argv and ["-p", "5499"] == argv[argv.index("-p"):argv.index("-p") + 2]
    assert f"unix_socket_directories={paths.router / 'postgres' / 'run'}" in argv


def test_the_gateway_is_told_where_the_store_is_never_a_secret(paths):
    sqlite = {"keys": {"store": "sqlite"}, "postgres": {"managed": True, "port": 5433}}
    assert postgres.store_env(paths, sqlite) == {}
    managed = postgres.store_env(paths, {"keys": {"store": "postgres"}, "postgres": {"managed": True, "port": 5433}})
    assert managed == {pgstore.STORE_ENV: "postgres", pgstore.CONNINFO_ENV: postgres.conninfo(5433),
                       pgstore.PASSWORD_FILE_ENV: str(paths.secret("postgres_password"))}
    by_env = postgres.store_env(paths, {"keys": {"store": "postgres"}, "postgres": {"url_env": "TEAM_PG"}})
    assert by_env == {pgstore.STORE_ENV: "postgres", pgstore.URL_ENV_ENV: "TEAM_PG"}
