"""tasks.gateway.keys.pgstore: where the store is (from the environment the launch sets), and its
failures in words that never carry the URL's password."""

from __future__ import annotations

import pytest

from tasks.gateway.keys import pgstore
from tests.support import free_port

SECRET = "s3cret-password-1234"


def test_where_reads_the_named_variable_or_file_and_says_what_is_missing(tmp_path):
    env = {pgstore.STORE_ENV: "postgres", pgstore.URL_ENV_ENV: "TEAM_PG"}
    assert pgstore.where({**env, "TEAM_PG": "postgresql://u:p@db:5432/k"}) == ("postgresql://u:p@db:5432/k", {})
    with pytest.raises(pgstore.Unreachable, match="TEAM_PG .* is not set"):
        pgstore.where(env)
    url = tmp_path / "url"
    url.write_text("postgresql://u:p@db:5432/k\n")
    assert pgstore.where({pgstore.URL_FILE_ENV: str(url)})[0] == "postgresql://u:p@db:5432/k"
    with pytest.raises(pgstore.Unreachable, match="not a regular file"):
        pgstore.where({pgstore.URL_FILE_ENV: str(tmp_path)})
    password = tmp_path / "pw"
    password.write_text("pw\n")
    assert pgstore.where({pgstore.CONNINFO_ENV: "host=h", pgstore.PASSWORD_FILE_ENV: str(password)}) == ("host=h", {"password": "pw"})
    assert pgstore.selected(env) and not pgstore.selected({})


@pytest.mark.parametrize("url", [f"postgresql://u:{SECRET}@127.0.0.1:{{port}}/db?bogus=1",
                                 f"host=127.0.0.1 port={{port}} password={SECRET} garbage",
                                 f"postgresql://u:{SECRET}@127.0.0.1:{{port}}/db"])
def test_a_failure_never_carries_the_password(url):
    port = free_port()
    with pytest.raises(pgstore.Unreachable) as caught:
        pgstore.connect({pgstore.URL_ENV_ENV: "X", "X": url.format(port=port)})
    assert SECRET not in str(caught.value) and ("malformed" in str(caught.value) or "refused" in str(caught.value))
    assert SECRET not in pgstore.described({pgstore.URL_ENV_ENV: "X", "X": url.format(port=port)})
