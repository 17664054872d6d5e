"""The Redis FlowGate runs itself (`redis.managed: true`): where it listens and how it is started.

Bound to 127.0.0.1 only, with the generated password (.router/secrets/redis_password), its data
under .router/redis/. The password goes in a config file (0600), never on the command line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.view import redis

REDIS_HOST = "127.0.0.1"


def redis_port(stack: dict) -> int:
    return int(redis(stack).port)


def data_dir(paths: Paths) -> Path:
    return paths.router / "redis"


def binary(paths: Paths, rd) -> Path:
    """redis.binary (`rd`: config.view.redis), or redis-server on the PATH; FlowgateError saying how to get one."""
    configured = rd.binary
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


def config_text(paths: Paths, port: int, password: str) -> str:
    """redis.conf for the managed server: loopback only, password required, data in its own dir."""
    return "\n".join([
        f"bind {REDIS_HOST}", f"port {int(port)}", "protected-mode yes", f'requirepass "{password}"',
        f'dir "{data_dir(paths)}"', 'dbfilename "dump.rdb"', "appendonly no", "daemonize no",
        'logfile ""',  # stdout: the supervisor's log file (`doit logs redis`)
    ]) + "\n"


def conf_path(paths: Paths) -> Path:
    return data_dir(paths) / "redis.conf"


def password(paths: Paths) -> str:
    from .secrets import REDIS_PASSWORD, read

    return read(paths, REDIS_PASSWORD)


def write_conf(paths: Paths, rd) -> None:
    """The config the server starts with (0600: it holds the password), in its private data dir."""
    from ..base.fsutil import PRIVATE_DIR_MODE, atomic_write, ensure_dir

    ensure_dir(data_dir(paths), PRIVATE_DIR_MODE)
    atomic_write(conf_path(paths), config_text(paths, rd.port, password(paths)).encode(), mode=0o600)


def redis_launch(paths: Paths, rd, environ=None):
    """How to run the managed Redis (`rd`: config.view.redis) under FlowGate's launcher, which probes
    it with PING (AUTH first)."""
    import os

    from ..config.names import REDIS
    from .secrets import REDIS_PASSWORD
    from .common import Launch, sha, launcher_argv, launcher_env

    path = binary(paths, rd)
    port = int(rd.port)
    argv = launcher_argv(paths, REDIS, f"redis://{REDIS_HOST}:{port}") + [str(path), str(conf_path(paths))]
    stat = path.stat()
    parts = {"binary": f"{path}:{stat.st_size}:{int(stat.st_mtime)}", "host": REDIS_HOST, "port": port, "argv": argv,
             "config": sha(config_text(paths, port, password(paths)))}  # a new password needs a restart
    env = launcher_env(os.environ if environ is None else environ)
    return Launch(REDIS, argv, env, paths.router, REDIS_HOST, port, parts,  # its data dir: in the conf
                  meta={"launcher": True, "password_file": str(paths.secret(REDIS_PASSWORD))})


def answers(host: str, port: int, meta: dict, timeout: float = 1.0) -> str:
    """The managed Redis's answer to PING after AUTH with its password ("PONG" when ready)."""
    from ..stack.watch.redisping import ping

    from ..config.keyfiles import read_key_file

    try:
        secret = read_key_file(Path(meta["password_file"]))  # regular, small, one line: never a FIFO's wait
    except (KeyError, FlowgateError):
        return "its password file is unreadable"
    return ping(host, port, secret, timeout)
