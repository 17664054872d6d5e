"""The PostgreSQL FlowGate runs itself for the member keys (`postgres.managed: true`, with
`keys.store: postgres`): Debian's `postgresql`, the way the managed Redis runs (tasks.services.redis).

Its cluster is made once by `initdb` in .router/postgres/data (0700), superuser `flowgate` with the
generated password (.router/secrets/postgres_password, given to initdb in a 0600 file, never on a
command line), password logins only (scram-sha-256). It listens on 127.0.0.1 only, its unix socket
in .router/postgres/run (0700). Readiness is a real login and `SELECT 1`.

PostgreSQL refuses to run as root. When FlowGate runs as root (containers, CI), initdb and the server
run as `postgres.run_as` (default `postgres`, the user Debian's package makes) through `setpriv`,
keeping only CAP_DAC_READ_SEARCH (DAC_OVERRIDE where a container lacks it) so they can reach their
directories through FlowGate's 0700 ones;
the cluster and socket directories belong to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.paths import Paths

HOST = "127.0.0.1"
SUPERUSER = "flowgate"
DATABASE = "postgres"
INITDB_TIMEOUT_S = 180
INSTALL = "install Debian's postgresql (`apt-get install postgresql`) or set postgres.bindir"
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes, with `/.s.PGSQL.NNNNN` after the directory


def data_dir(paths: Paths) -> Path:
    return paths.router / "postgres"


def cluster_dir(paths: Paths) -> Path:
    return data_dir(paths) / "data"


def socket_dir(paths: Paths) -> Path:
    return data_dir(paths) / "run"


def bindir(paths: Paths, pg) -> Path:
    """The directory of `postgres` and `initdb`: postgres.bindir, else beside `postgres` on the PATH,
    else Debian's /usr/lib/postgresql/<newest>/bin."""
    if pg.bindir:
        found = paths.user_path(pg.bindir)
        if not (found / "postgres").is_file() or not (found / "initdb").is_file():
            raise FlowgateError(f"postgres.bindir {pg.bindir} holds no postgres and initdb", INSTALL)
        return found
    candidates = []
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[-2].split(".") if x.isdigit()])
    candidates += [Path(p) for p in reversed(versions)]
    for folder in candidates:
        if (folder / "postgres").is_file() and (folder / "initdb").is_file():
            return folder
    raise FlowgateError("postgres.managed is true, but PostgreSQL's postgres and initdb were not found", INSTALL)


def run_as(pg) -> tuple[list[str], tuple[int, int] | None]:
    """(argv prefix, (uid, gid) to own the cluster) for running PostgreSQL's programs: nothing unless root."""
    if os.geteuid() != 0:
        return [], None
    import pwd

    try:
        user = pwd.getpwnam(pg.run_as)
    except KeyError:
        raise FlowgateError(f"FlowGate runs as root and PostgreSQL refuses root, but the user {pg.run_as!r} "
                            "(postgres.run_as) does not exist",
                            "install Debian's postgresql (it makes the user postgres), or set postgres.run_as to a user") from None
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise FlowgateError("FlowGate runs as root and needs setpriv to run PostgreSQL as another user",
                            "install util-linux (`apt-get install util-linux`)")
    cap = _reach_capability()
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            f"--inh-caps=-all,+{cap}", f"--ambient-caps=+{cap}", "--"], (user.pw_uid, user.pw_gid)


def _reach_capability() -> str:
    """The one capability that lets the server through FlowGate's 0700 directories: DAC_READ_SEARCH
    (look, never write), else DAC_OVERRIDE where a container's bounding set lacks it (Docker's default)."""
    bounding = 0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            bounding = next((int(line.split()[1], 16) for line in fh if line.startswith("CapBnd:")), 0)
    except (OSError, ValueError):
        pass
    if bounding & (1 << 2):
        return "dac_read_search"
    if bounding & (1 << 1):
        return "dac_override"
    raise FlowgateError("FlowGate runs as root without CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE: PostgreSQL, run as "
                        "another user, could not reach .router/",
                        "run FlowGate as a user other than root, or grant the container CAP_DAC_READ_SEARCH")


def password(paths: Paths) -> str:
    from .secrets import POSTGRES_PASSWORD, read

    return read(paths, POSTGRES_PASSWORD)


def _own(path: Path, owner) -> None:
    from ..base.fsutil import PRIVATE_DIR_MODE, ensure_dir

    ensure_dir(path, PRIVATE_DIR_MODE)
    if owner is not None:
        os.chown(path, *owner)
    os.chmod(path, PRIVATE_DIR_MODE)


def ensure_cluster(paths: Paths, pg) -> None:
    """Make the cluster once (initdb), and the socket directory; FlowgateError with initdb's words when it fails."""
    import subprocess
    import tempfile

    from ..base.fsutil import PRIVATE_DIR_MODE, ensure_dir

    prefix, owner = run_as(pg)
    ensure_dir(data_dir(paths), PRIVATE_DIR_MODE)
    _own(socket_dir(paths), owner)
    cluster = cluster_dir(paths)
    if (cluster / "PG_VERSION").exists():
        return
    if cluster.exists() and any(cluster.iterdir()):  # an initdb cut short: its leftovers would stop the next one
        shutil.rmtree(cluster)
    _own(cluster, owner)
    fd, pwfile = tempfile.mkstemp(prefix=".pw.", dir=data_dir(paths))  # 0600, in a 0700 dir
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(password(paths) + "\n")
        argv = prefix + [str(bindir(paths, pg) / "initdb"), "-D", str(cluster), "-U", SUPERUSER, f"--pwfile={pwfile}",
                         "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=INITDB_TIMEOUT_S, cwd=data_dir(paths))
        except subprocess.TimeoutExpired:
            raise FlowgateError(f"initdb did not finish within {INITDB_TIMEOUT_S} s", "see `uv run doit doctor` (disk?)") from None
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split())[-300:]
            raise FlowgateError(f"initdb failed for the managed PostgreSQL: {said}", f"fix that, then `uv run doit up` ({INSTALL})")
    finally:
        os.unlink(pwfile)


def server_argv(paths: Paths, pg) -> list[str]:
    prefix, _ = run_as(pg)
    sockets = str(socket_dir(paths)) if len(str(socket_dir(paths))) <= SOCKET_PATH_MAX else ""  # too long: TCP only
    return prefix + [str(bindir(paths, pg) / "postgres"), "-D", str(cluster_dir(paths)), "-p", str(int(pg.port)),
                     "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={sockets}",
                     "-c", "unix_socket_permissions=0700", "-c", "logging_collector=off"]


def probe_meta(paths: Paths) -> dict:
    from .secrets import POSTGRES_PASSWORD

    return {"password_file": str(paths.secret(POSTGRES_PASSWORD))}


def postgres_launch(paths: Paths, pg, environ=None):
    """How to run the managed PostgreSQL (`pg`: config.view.postgres) under FlowGate's launcher."""
    from ..config.names import POSTGRES
    from .common import Launch, launcher_argv, launcher_env

    port = int(pg.port)
    server = server_argv(paths, pg)
    # SIGINT to the server on a stop: a fast shutdown (on SIGTERM it waits for every gateway's connection to close)
    argv = launcher_argv(paths, POSTGRES, f"postgresql://{HOST}:{port}")[:-1] + ["--stop-signal", "INT", "--"] + server
    binary = Path(server[server.index("-D") - 1])
    stat = binary.stat()
    parts = {"binary": f"{binary}:{stat.st_size}:{int(stat.st_mtime)}", "host": HOST, "port": port, "argv": argv}
    env = launcher_env(os.environ if environ is None else environ)
    return Launch(POSTGRES, argv, env, paths.router, HOST, port, parts, meta={"launcher": True, **probe_meta(paths)})


def conninfo(port: int) -> str:
    return f"host={HOST} port={int(port)} user={SUPERUSER} dbname={DATABASE}"


def answers(host: str, port: int, meta: dict, timeout: float = 1.0) -> str:
    """"ready" when a login with the generated password runs `SELECT 1`, else why not (no secret in it)."""
    from ..config.keyfiles import read_key_file

    try:
        secret = read_key_file(Path(meta["password_file"]))
    except (KeyError, FlowgateError):
        return "its password file is unreadable"
    import psycopg

    try:
        with psycopg.connect(f"host={host} port={int(port)} user={SUPERUSER} dbname={DATABASE}", password=secret,
                             connect_timeout=max(2, int(timeout + 0.999)), autocommit=True,
                             options=f"-c statement_timeout={max(1, int(timeout * 1000))}") as db:
            db.execute("SELECT 1").fetchone()
        return "ready"
    except psycopg.Error as exc:
        return " ".join(str(exc).split())[:200] or type(exc).__name__


def control_env(paths: Paths) -> dict | None:
    """For `doit keys` and doctor (tasks.keys.manage's `store`): the environment pgstore reads when the
    config selects PostgreSQL, else None (SQLite). The config as it is now, not stack.json (which the
    next `doit up` writes): a store switched in the config is the one written, and an invalid config
    is its one clear error, never a write to the other store."""
    if not paths.base_config.exists() and not paths.local_config.exists():
        return None  # no config at all: the default
    from ..config.load import load_stack

    found = store_env(paths, load_stack(paths))
    return {**os.environ, **found} if found else None


def store_env(paths: Paths, stack: dict) -> dict[str, str]:
    """The environment that points the gateway (tasks.gateway.keys.pgstore) at the member keys' store:
    empty for SQLite. Names of variables and files only, never a secret."""
    from ..config.view import key_store, postgres
    from ..gateway.keys import pgstore

    if key_store(stack) != "postgres":
        return {}
    pg = postgres(stack)
    out = {pgstore.STORE_ENV: "postgres"}
    if pg.managed:
        from .secrets import POSTGRES_PASSWORD

        out[pgstore.CONNINFO_ENV] = conninfo(pg.port)
        out[pgstore.PASSWORD_FILE_ENV] = str(paths.secret(POSTGRES_PASSWORD))
    elif pg.url_env:
        out[pgstore.URL_ENV_ENV] = pg.url_env
    else:
        out[pgstore.URL_FILE_ENV] = str(paths.user_path(pg.url_file))
    return out
