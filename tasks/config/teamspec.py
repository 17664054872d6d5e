"""Config keys for running FlowGate for a team: replicas, Redis, the member keys' store (SQLite or
PostgreSQL), a shared token store, container images. Declared here and plugged into tasks.config's schema, so that module's edit
stays a few lines; `problems` adds the cross-checks the declarative schema cannot express.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..release import lines
from .schema import Mapping, Problem, Scalar

LITELLM_IMAGE = "ghcr.io/berriai/litellm:main-v1.108.14"  # the pinned litellm[proxy]==1.108.14
CLIPROXY_IMAGE = f"eceasy/cli-proxy-api:{lines.MAINLINE_VERSION}"  # the mainline's own image, pinned tag
REDIS_IMAGE = "redis:7"
POSTGRES_IMAGE = "postgres:15"  # the major version of Debian 12's postgresql, which the managed one runs

STORE_TYPES = ("postgres", "object")
_STORE_WORDS = {"postgres": "a Postgres store", "object": "an object store"}


def _opt(what: str | None = None) -> Scalar:
    return Scalar(str, nullable=True, default=None, what=what)


REPLICAS = Scalar(int, default=1, min=1, what="a whole number of at least 1")
REDIS = Mapping({
    "url": _opt("a redis:// or rediss:// URL (or null)"),
    "password_env": _opt("an environment variable name (or null)"),
    "password_file": _opt("a path to a file holding the password (or null)"),
    "managed": Scalar(bool, default=False),
    # the managed one (always on 127.0.0.1)
    "port": Scalar(int, default=6399, min=1, max=65535, what="a TCP port (1-65535)"),
    "start_timeout": Scalar(float, default=10.0, min=0.1, max=3600, what="seconds"),
    "stop_timeout": Scalar(float, default=10.0, min=0.1, max=3600, what="seconds"),
    "binary": _opt("a path to redis-server (or null)"),
})
KEY_STORES = ("sqlite", "postgres")
KEYS = Mapping({"store": Scalar(str, default="sqlite", choices=KEY_STORES)})  # where member keys live (tasks.keys)
POSTGRES = Mapping({
    "managed": Scalar(bool, default=False),  # FlowGate runs it (tasks.services.postgres), on 127.0.0.1
    "url_env": _opt("an environment variable name holding a postgresql:// URL (or null)"),
    "url_file": _opt("a path to a file holding a postgresql:// URL (or null)"),
    "port": Scalar(int, default=5433, min=1, max=65535, what="a TCP port (1-65535)"),
    "start_timeout": Scalar(float, default=30.0, min=0.1, max=3600, what="seconds"),
    "stop_timeout": Scalar(float, default=10.0, min=0.1, max=3600, what="seconds"),
    "bindir": _opt("the directory holding postgres and initdb (or null: found)"),
    "run_as": Scalar(str, default="postgres", what="a user name"),  # when FlowGate runs as root (postgres refuses root)
})
# CLIProxyAPI keeps accounts in a shared store instead of its auth dir (PGSTORE_* / OBJECTSTORE_*).
STORE = Mapping({
    "type": Scalar(str, nullable=True, default=None, choices=STORE_TYPES),
    "dsn_env": _opt(), "dsn_file": _opt(), "schema": _opt(),
    "endpoint": _opt(), "bucket": _opt(),
    "access_key_env": _opt(), "access_key_file": _opt(),
    "secret_key_env": _opt(), "secret_key_file": _opt(),
})
DEPLOY = Mapping({
    "images": Mapping({
        "litellm": Scalar(str, default=LITELLM_IMAGE, what="an image reference like repo/name:tag"),
        "cliproxy": Scalar(str, default=CLIPROXY_IMAGE, what="an image reference like repo/name:tag"),
        "redis": Scalar(str, default=REDIS_IMAGE, what="an image reference like repo/name:tag"),
        "postgres": Scalar(str, default=POSTGRES_IMAGE, what="an image reference like repo/name:tag"),
    }),
})

_IMAGE = re.compile(r"^[a-z0-9][A-Za-z0-9._/:@-]*[A-Za-z0-9]$")
_STORE_KEYS = {
    "postgres": {"dsn": True, "schema": False},
    "object": {"endpoint": True, "bucket": True, "access_key": True, "secret_key": True},
}
_SECRET_PAIRS = ("dsn", "access_key", "secret_key")  # given as <name>_env or <name>_file


def problems(cfg: dict) -> list[Problem]:
    """Cross-checks of the team keys in a validated config (every default filled in)."""
    return (_redis(cfg["redis"]) + _postgres(cfg["keys"], cfg["postgres"]) + _store(cfg["cliproxy"]["store"])
            + _images(cfg["deploy"]["images"]))


def _postgres(keys: dict, pg: dict) -> list[Problem]:
    at = lambda key: ("postgres", key)  # noqa: E731
    urls = [k for k in ("url_env", "url_file") if pg[k]]
    out = [Problem(at(urls[1]), "give either url_env or url_file, not both")] if len(urls) > 1 else []
    if pg["managed"] and urls:
        out.append(Problem(at(urls[0]), "give either postgres.url_env/url_file (a PostgreSQL you run) or managed: true, not both"))
    if keys["store"] == "postgres" and not pg["managed"] and not urls:
        out.append(Problem(("keys", "store"), "postgres needs postgres.managed: true (FlowGate runs it) "
                                              "or postgres.url_env / url_file (a PostgreSQL you run)"))
    if pg["bindir"] and not pg["managed"]:
        out.append(Problem(at("bindir"), "only with postgres.managed: true"))
    return out


def _redis(redis: dict) -> list[Problem]:
    out = []
    at = lambda key: ("redis", key)  # noqa: E731
    if redis["url"] is not None:
        if redis["managed"]:
            out.append(Problem(at("managed"), "give either redis.url (a Redis you run) or managed: true, not both"))
        try:
            parts = urlsplit(redis["url"])
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError as exc:
            parts = None
            out.append(Problem(at("url"), f"is not a valid URL: {exc}"))
        if parts and (parts.scheme not in ("redis", "rediss") or not parts.hostname):
            out.append(Problem(at("url"), f"expected redis://host:port or rediss://host:port, found {redis['url']!r}"))
        elif parts and parts.password:
            out.append(Problem(at("url"), "holds a password: move it to redis.password_env or redis.password_file "
                                          "(the URL is written into manifests)"))
    elif redis["password_env"] or redis["password_file"]:
        key = "password_env" if redis["password_env"] else "password_file"
        out.append(Problem(at(key), "only with redis.url (a managed Redis gets a generated password)"))
    if redis["password_env"] and redis["password_file"]:
        out.append(Problem(at("password_file"), "give either password_env or password_file, not both"))
    if redis["binary"] and not redis["managed"]:
        out.append(Problem(at("binary"), "only with redis.managed: true"))
    return out


def _store(store: dict) -> list[Problem]:
    at = lambda key: ("cliproxy", "store", key)  # noqa: E731
    given = {k for k, v in store.items() if v is not None and k != "type"}
    kind = store["type"]
    if kind is None:
        return [Problem(at(sorted(given)[0]), "set cliproxy.store.type (postgres or object) to use a token store")] if given else []
    wanted = _STORE_KEYS[kind]
    out = []
    for name, required in wanted.items():
        keys = (f"{name}_env", f"{name}_file") if name in _SECRET_PAIRS else (name,)
        present = [k for k in keys if store[k] is not None]
        if required and not present:
            out.append(Problem(at(keys[0]), f"missing: {_STORE_WORDS[kind]} needs {' or '.join(keys)}"))
        if len(present) > 1:
            out.append(Problem(at(present[1]), f"give either {present[0]} or {present[1]}, not both"))
    allowed = {k for name in wanted for k in ((f"{name}_env", f"{name}_file") if name in _SECRET_PAIRS else (name,))}
    out += [Problem(at(k), f"not used by {_STORE_WORDS[kind]}") for k in sorted(given - allowed)]
    return out


def _images(images: dict) -> list[Problem]:
    return [Problem(("deploy", "images", name), f"expected an image reference like repo/name:tag, found {ref!r}")
            for name, ref in images.items() if not _IMAGE.match(ref)]
