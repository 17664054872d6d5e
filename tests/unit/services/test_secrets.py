"""tasks.services.secrets: generated once, private from the first byte, never printed in full."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from tasks.services import secrets
from tasks.base.errors import FlowgateError


MANAGED = {"redis": {"managed": True}, "postgres": {"managed": True}}  # every secret in use


def test_redis_and_postgres_passwords_only_with_a_managed_server(paths):
    assert sorted(secrets.ensure_all(paths, {"redis": {"managed": False}})) == \
        sorted(n for n in secrets.SECRETS if n not in (secrets.REDIS_PASSWORD, secrets.POSTGRES_PASSWORD))
    assert not paths.secret(secrets.REDIS_PASSWORD).exists()
    assert secrets.ensure_all(paths, {"redis": {"managed": True}}) == [secrets.REDIS_PASSWORD]
    assert secrets.ensure_all(paths, MANAGED) == [secrets.POSTGRES_PASSWORD]


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_private_and_stable(paths):
    assert sorted(secrets.ensure_all(paths, MANAGED)) == sorted(secrets.SECRETS)
    assert mode(paths.secrets_dir) == 0o700
    first = secrets.read_all(paths, MANAGED)
    for name in secrets.SECRETS:
        assert mode(paths.secret(name)) == 0o600
    assert first[secrets.LITELLM_MASTER_KEY].startswith("sk-")
    assert len(first[secrets.LITELLM_MASTER_KEY]) >= 3 + 32
    assert secrets.ensure_all(paths, MANAGED) == []  # never regenerated
    assert secrets.read_all(paths, MANAGED) == first
    assert len(set(first.values())) == len(secrets.SECRETS)


def test_concurrent_ensure_agrees_on_one_value(paths):
    results = []
    threads = [threading.Thread(target=lambda: results.append(secrets.ensure(paths, secrets.LITELLM_MASTER_KEY)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert [p.name for p in paths.secrets_dir.iterdir()] == [secrets.LITELLM_MASTER_KEY]  # no temp files left


def test_private_even_with_permissive_umask(paths):
    old = os.umask(0)
    try:
        secrets.ensure_all(paths, MANAGED)
    finally:
        os.umask(old)
    assert mode(paths.secrets_dir) == 0o700
    assert all(mode(paths.secret(n)) == 0o600 for n in secrets.SECRETS)


def test_missing_secret_is_a_clean_error(paths):
    with pytest.raises(FlowgateError) as info:
        secrets.read(paths, secrets.LITELLM_MASTER_KEY)
    assert "litellm_master_key is missing" in info.value.message and "doit up" in info.value.hint


def test_mask_never_reveals_the_key():
    key = secrets.generate(secrets.LITELLM_MASTER_KEY)
    masked = secrets.mask(key)
    assert key not in masked and len(masked) < 16 and masked.startswith("sk-")


def test_loose_modes_reported(paths):
    secrets.ensure_all(paths, MANAGED)
    os.chmod(paths.secret(secrets.CLIPROXY_API_KEY), 0o644)
    [line] = secrets.loose_modes(paths)
    assert "cliproxy_api_key" in line and "0o644" in line


def test_a_fifo_or_a_huge_secret_file_is_refused_without_reading_it(paths):
    import os

    import pytest

    from tasks.base.errors import FlowgateError

    secrets.ensure_all(paths, MANAGED)
    key = paths.secret(secrets.LITELLM_MASTER_KEY)
    key.unlink()
    os.mkfifo(key)  # reading it would wait for a writer forever
    with pytest.raises(FlowgateError, match=r"not a regular file \(a FIFO\)"):
        secrets.read(paths, secrets.LITELLM_MASTER_KEY)
    key.unlink()
    with open(key, "wb") as fh:
        fh.truncate(2 << 30)  # sparse: 2 GB never read
    with pytest.raises(FlowgateError, match="larger than 4096 bytes"):
        secrets.read(paths, secrets.LITELLM_MASTER_KEY)
