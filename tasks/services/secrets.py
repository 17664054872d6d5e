"""Generated secrets in .router/secrets/ (dir 0700, files 0600 from the first byte).

Each secret is created once, on first need, and never regenerated: `ensure` links a fully written
temp file into place, which fails if another process got there first, so concurrent runs agree on
one value. Values are never printed in full (`mask`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import NotRegularFile, PRIVATE_DIR_MODE, ensure_dir, read_regular, write_error
from ..base.paths import Paths

LITELLM_MASTER_KEY = "litellm_master_key"  # contract: .router/secrets/litellm_master_key
CLIPROXY_API_KEY = "cliproxy_api_key"
CLIPROXY_MANAGEMENT_KEY = "cliproxy_management_key"
REDIS_PASSWORD = "redis_password"  # of the Redis FlowGate runs (redis.managed), here or in a cluster
POSTGRES_PASSWORD = "postgres_password"  # of the PostgreSQL FlowGate runs for member keys (postgres.managed)
SECRET_LIMIT = 4096  # a generated secret is ~50 bytes

# name -> (prefix, what it is for). 32 random bytes = 43 URL-safe characters.
SECRETS = {
    LITELLM_MASTER_KEY: ("sk-", "LiteLLM master key: the gateway key clients send"),
    CLIPROXY_API_KEY: ("sk-cpa-", "CLIProxyAPI client key LiteLLM uses"),
    CLIPROXY_MANAGEMENT_KEY: ("mgmt-", "CLIProxyAPI management API key"),
    REDIS_PASSWORD: ("redis-", "password of a Redis FlowGate runs (redis.managed: true)"),
    POSTGRES_PASSWORD: ("pg-", "password of the PostgreSQL FlowGate runs (postgres.managed: true)"),
}
MANAGED_ONLY = {REDIS_PASSWORD: "redis", POSTGRES_PASSWORD: "postgres"}  # secret -> the section whose `managed` needs it


def generate(name: str) -> str:
    import secrets  # here: only a command that writes a key needs it (and its hmac import)

    prefix, _ = SECRETS[name]
    return prefix + secrets.token_urlsafe(32)


def ensure(paths: Paths, name: str) -> bool:
    """Create the secret if it does not exist. Returns True when it was created now."""
    target = paths.secret(name)
    ensure_dir(paths.secrets_dir, PRIVATE_DIR_MODE)
    if target.exists():
        return False
    if os.path.islink(target):
        raise _dangling(target)
    value = generate(name) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=paths.secrets_dir)  # 0600 from the start
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, target)  # atomic create-if-absent: never replaces an existing secret
        except FileExistsError:
            return False
    except OSError as exc:
        raise write_error(target, exc) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return True


def _dangling(path: Path) -> FlowgateError:
    """A secret that is a link to nothing: generating one would not help (the link stays in the way)."""
    from ..base.terminal import printable

    try:
        target = printable(os.readlink(path))
    except OSError:
        target = "?"
    return FlowgateError(f"secret file {path} is a symbolic link to {target}, which does not exist",
                         f"restore {target}, or remove the link (`rm {path}`) and run `uv run doit secrets` "
                         "to generate a new one (a new gateway key means updating the clients)")


def needed(stack: dict | None) -> list[str]:
    """The secrets this config uses: Redis's and PostgreSQL's passwords only with their `managed` (no stray key otherwise)."""
    return [name for name in SECRETS
            if name not in MANAGED_ONLY or (((stack or {}).get(MANAGED_ONLY[name]) or {}).get("managed"))]


def ensure_all(paths: Paths, stack: dict | None = None) -> list[str]:
    """Create every missing secret the config needs; returns the names created now."""
    return [name for name in needed(stack) if ensure(paths, name)]


def read(paths: Paths, name: str) -> str:
    path = paths.secret(name)
    try:
        data, _ = read_regular(path, SECRET_LIMIT)  # never blocks on a FIFO, never reads a device whole
        if len(data) > SECRET_LIMIT:
            raise FlowgateError(f"secret file {path} is larger than {SECRET_LIMIT} bytes: it is not one of FlowGate's",
                                "move it away and run `uv run doit secrets` to generate a new one")
        value = data.decode("utf-8").strip()
    except NotRegularFile as exc:
        raise FlowgateError(f"secret file {path} is not a regular file ({exc.kind})",
                            "move it away and run `uv run doit secrets` to generate a new one") from None
    except UnicodeDecodeError:
        raise FlowgateError(f"secret file {path} is not text",
                            "move it away and run `uv run doit secrets` to generate a new one") from None
    except FileNotFoundError:
        if os.path.islink(path):
            raise _dangling(path) from None
        raise FlowgateError(f"secret file {path} is missing",
                            "run `uv run doit up` (or `uv run doit secrets`) to generate it") from None
    except OSError as exc:
        raise FlowgateError(f"cannot read secret file {path}: {exc.strerror}",
                            "check the file's owner and permissions (it should be 0600)") from None
    if not value:
        raise FlowgateError(f"secret file {path} is empty",
                            "delete it and run `uv run doit secrets` to generate a new one")
    if name == LITELLM_MASTER_KEY and not value.startswith("sk-"):
        raise FlowgateError(f"{path} does not hold a LiteLLM key (it must start with sk-)",
                            "delete it and run `uv run doit secrets` to generate a new one")
    return value


def read_all(paths: Paths, stack: dict | None = None) -> dict[str, str]:
    return {name: read(paths, name) for name in needed(stack)}


def all_present(paths: Paths, stack: dict | None) -> bool:
    return all(paths.secret(name).exists() for name in needed(stack))


def placeholders() -> dict[str, str]:
    """Stand-ins for rendering in memory (`doit check`) before any secret exists."""
    return {name: generate(name) for name in SECRETS}


def mask(value: str) -> str:
    """Enough to recognise a key, never enough to use it (tasks.redact owns the rule)."""
    from ..base.redact import mask as _mask  # imported on use: every `doit` run imports this module

    return _mask(value)


def loose_modes(paths: Paths) -> list[str]:
    """Secret files or dir readable by anyone but the owner (for `doit doctor`)."""
    out = []
    if paths.secrets_dir.exists() and paths.secrets_dir.stat().st_mode & 0o077:
        out.append(f"{paths.secrets_dir} is {oct(paths.secrets_dir.stat().st_mode & 0o777)} (want 0o700)")
    for name in SECRETS:
        p: Path = paths.secret(name)
        if p.exists() and p.stat().st_mode & 0o077:
            out.append(f"{p} is {oct(p.stat().st_mode & 0o777)} (want 0o600)")
    return out
