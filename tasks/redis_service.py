"""The Redis FlowGate runs itself (`redis.managed: true`): where it listens and how it is started.

Bound to 127.0.0.1 only, with the generated password (.router/secrets/redis_password), its data
under .router/redis/. The password goes in a config file (0600), never on the command line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import FlowgateError
from .paths import Paths

REDIS_HOST = "127.0.0.1"


def redis_port(stack: dict) -> int:
    return int(stack["redis"]["port"])


def data_dir(paths: Paths) -> Path:
    return paths.router / "redis"


def binary(paths: Paths, stack: dict) -> Path:
    """redis.binary, or redis-server on the PATH; FlowgateError saying how to get one."""
    configured = stack["redis"]["binary"]
    if configured:
        path = paths.user_path(configured)
        if not path.is_file():
            raise FlowgateError(f"redis.binary {configured} does not exist",
                                "install Redis (Debian: `apt-get install redis-server`) and fix redis.binary")
        return path
    found = shutil.which("redis-server")
    if not found:
        raise FlowgateError("redis.managed is true, but redis-server is not on the PATH",
                            "install Redis (Debian: `apt-get install redis-server`) or set redis.binary")
    return Path(found)


def config_text(paths: Paths, stack: dict, password: str) -> str:
    """redis.conf for the managed server: loopback only, password required, data in its own dir."""
    return "\n".join([
        f"bind {REDIS_HOST}", f"port {redis_port(stack)}", "protected-mode yes", f'requirepass "{password}"',
        f'dir "{data_dir(paths)}"', 'dbfilename "dump.rdb"', "appendonly no", "daemonize no",
        'logfile ""',  # stdout: the supervisor's log file (`doit logs redis`)
    ]) + "\n"
