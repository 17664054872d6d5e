"""The validated stack, read by name: one read-only settings object per service.

The stack (stack.json, the active profile applied) stays plain JSON data on disk and in memory, so
it can be hashed, sliced per service and written back as it is. Code that runs a service reads its
settings through these views instead of string keys:

    lite = litellm(stack)       # lite.host, lite.port, lite.stop_timeout, lite.replicas, lite.env
    cp = cliproxy(stack)        # cp.enabled, cp.host, cp.port, cp.settings, cp.release, ...
    rd = redis(stack)           # rd.managed, rd.url, rd.port, rd.password_env, ...

Each is a collections.namedtuple (immutable; ~1 us to build, so the no-op path does not notice),
built from the schema's own keys: a key the schema gains is a field at once.
"""

from __future__ import annotations

from collections import namedtuple


def _view(name: str, fields: tuple[str, ...], doc: str):
    cls = namedtuple(name, fields)
    cls.__doc__ = doc
    return cls


LiteLLM = _view("LiteLLM", ("host", "port", "allow_remote", "start_timeout", "stop_timeout", "env", "replicas",
                            "lean_path"),
                "litellm: settings of the gateway (the LiteLLM proxy and its replicas).")
CLIProxy = _view("CLIProxy", ("enabled", "host", "port", "allow_remote", "binary", "release", "start_timeout",
                              "stop_timeout", "settings", "store", "api_keys"),
                 "cliproxy: settings of CLIProxyAPI (settings: its pass-through config keys).")
Redis = _view("Redis", ("url", "password_env", "password_file", "managed", "port", "start_timeout", "stop_timeout",
                        "binary", "host"),
              "redis: the shared router state (managed: FlowGate runs it on 127.0.0.1).")

Postgres = _view("Postgres", ("managed", "url_env", "url_file", "port", "start_timeout", "stop_timeout", "bindir",
                              "run_as", "host"),
                 "postgres: the member keys' PostgreSQL (managed: FlowGate runs it on 127.0.0.1).")

_DEFAULTS = {"replicas": 1, "store": None, "api_keys": (), "host": "127.0.0.1", "binary": None, "lean_path": True,
             "bindir": None, "run_as": "postgres"}


def _make(cls, data: dict | None):
    data = data or {}
    return cls._make(data[f] if f in data else _DEFAULTS.get(f) for f in cls._fields)


def litellm(stack: dict) -> LiteLLM:
    return _make(LiteLLM, stack["litellm"])


def cliproxy(stack: dict) -> CLIProxy:
    return _make(CLIProxy, stack["cliproxy"])


def redis(stack: dict) -> Redis:
    return _make(Redis, stack.get("redis"))


def postgres(stack: dict) -> Postgres:
    return _make(Postgres, stack.get("postgres"))


def key_store(stack: dict | None) -> str:
    """Where member keys live: "sqlite" (the default, also for a stack.json from before the key) or "postgres"."""
    return ((stack or {}).get("keys") or {}).get("store") or "sqlite"


def of(stack: dict, service: str):
    """The settings of `service` (litellm, cliproxy, redis or postgres) by its name."""
    return {"litellm": litellm, "cliproxy": cliproxy, "redis": redis, "postgres": postgres}[service](stack)


def address(stack: dict | None, service: str) -> tuple | None:
    """(host, port) the config gives `service`, for finding a process whose record was lost; None
    for a replica instance (`litellm#2` shares the address: only its record knows its process) or
    without a config. Read with .get: `down` may read a stack.json an older FlowGate wrote, and must
    stop regardless."""
    cfg = (stack or {}).get(service) or {}
    return (cfg.get("host"), cfg.get("port")) if cfg.get("host") and cfg.get("port") else None


def configured_env(stack: dict, service: str) -> dict:
    """The `env` the config sets for a service (LiteLLM's: the others have none)."""
    return dict(litellm(stack).env or {}) if service == "litellm" else {}
