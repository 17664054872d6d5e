#!/usr/bin/env python3
"""Test double of the CLIProxyAPI binary, in both editions: the mainline (`cli-proxy-api`) and the
Plus line (`cli-proxy-api-plus`).

Why one file over 400 lines: a CLIProxyAPI release archive carries exactly one executable, and the
tests install this double through the same fetch path as the real binary (tests/fakes/today.py packs
it, behind a `#!<python>` line, into the fake GitHub releases that `doit fetch` downloads, verifies
and extracts; other tests run it as a user-supplied binary). A second module would not travel with
it, so it stays standalone: standard library + PyYAML, no imports from `tasks` or `tests`. By hand:

    python tests/fakes/cliproxy_double.py -config path/to/config.yaml

It implements /work/shared/reference/cliproxyapiplus.md, and its sections follow that sheet's
headings in order: Release assets, Command line, config.yaml keys, HTTP surface, Management API,
Token stores, Account files in auth-dir. What the sheet's last section ("Mainline CLIProxyAPI v7")
changes sits next to the behaviour it changes, marked "mainline".

The edition comes from the executable's name, as in the releases (CLIPROXY_DOUBLE_EDITION overrides):

* Plus (`cli-proxy-api-plus`, or this script under its own name), as tag v6.8.16-0: banner version
  `6.8.16-0-plus`; no health route (`GET /` is the readiness probe); logins codex, anthropic,
  gemini-cli, antigravity, iflow (redirect), github (Copilot), qwen, kimi (device) and kiro; an
  unknown or expired login state answers `{"status":"ok"}`; sessions live 10 minutes; codex account
  files are `codex-<email>.json`.
* Mainline (`cli-proxy-api`), as v7.2.140: banner version `7.2.140`; `GET /healthz`; logins codex,
  anthropic, antigravity (redirect), kimi and xai (device) only: other login routes answer 404 and
  Plus-only flags (`-github-copilot-login`) exit 2; an unknown state answers an error, a finished
  login answers ok for 60 s; `DELETE /oauth-session` cancels; sessions live 30 minutes; codex account
  files are `codex-<hash8>-<email>.json`.

Both keep the traps FlowGate must cope with: the first stdout line is the version banner and there
is no `-version` flag; a bad config and a taken port are logged and exit **0**, with "API server
started successfully" printed before the bind; a plaintext `remote-management.secret-key` is
replaced in the config file by a bcrypt hash (line edit, comments kept, new inode); the config file
and auth-dir are polled (~0.3 s) and hot-reloaded, host/port need a restart; an empty `api-keys`
list disables client auth; without a management key every management route is a bare 404;
MANAGEMENT_PASSWORD enables management and forces allow-remote on.

Test knobs (environment, all optional; not in the real binary):

    CLIPROXY_DOUBLE_EDITION        "mainline" or "plus", whatever the executable's name
    CLIPROXY_DOUBLE_CATALOG        the model registry file (default: models.json beside this script,
                                   tests/fakes/models.json); re-read when it changes, as the real
                                   binary refreshes its catalog every 3 h without a release
    CLIPROXY_DOUBLE_CODEX_CATALOG  Codex's model templates for `GET /v1/models?client_version=` (default:
                                   codex_client_models.json beside this script); missing: `{"models": null}`
    CLIPROXY_DOUBLE_CODEX_PLAN     the plan a new codex login gets (default plus): free, plus, pro, team
    CLIPROXY_DOUBLE_START_DELAY    seconds to wait after the banner before binding
    CLIPROXY_DOUBLE_EXIT_AT_START  exit right after the banner with this status
    CLIPROXY_DOUBLE_STREAM_DELAY   seconds between SSE chunks (default 0)
    CLIPROXY_DOUBLE_CALLBACK_DELAY seconds from POST /oauth-callback to the account file (default
                                   0.05); status polls answer "wait" meanwhile
    CLIPROXY_DOUBLE_OK_WINDOW      mainline: seconds a finished login answers ok (default 60)

    CLIPROXY_DOUBLE_QUOTA_STEP     percent a served request adds to every quota window of the account
                                   that served it (default 0: the windows keep CODEX_WINDOWS /
                                   CLAUDE_WINDOWS and no request is ever refused for quota)
    CLIPROXY_DOUBLE_QUOTA_RESET    seconds from a window's first counted request to its reset to 0 %
                                   (default 30); the quota answers report the live percent and reset

Accounts in rotation (as v7.2.140's sdk/cliproxy/auth; section "Accounts in rotation" below): every
enabled account serving the requested model takes its turn (round-robin over the ready ones sorted
by file name, a cursor per provider and model; `routing.strategy: fill-first` takes the first ready
one). A served request counts for its account (`success`, `recent_requests` in 10-minute buckets,
and QUOTA_STEP on each window; count_tokens is not metered). An account with a window at 100 %
answers as its provider does when a subscription is used up (codex: 429 `usage_limit_reached` with
`resets_at` and `resets_in_seconds`; claude: 429 `rate_limit_error` with the
`anthropic-ratelimit-unified-*` headers of a rejected 5 h window), and the double does what the
binary does with it:
* the attempt counts as `failed`; the account cools down (codex: that model until `resets_at`;
  claude: every model of the account until the reset plus a random 1-30 s grace); its auth-files
  entry says `status: error`, the upstream body as `status_message`, and `unavailable: true` /
  `next_retry_after` once every model it has served is cooling down (these stay until the
  account's next result, or the next change in auth-dir, below);
* the same request goes to the next ready account; when none is left the client gets the last
  upstream 429 as it came (a streamed Responses request: codex's error cut down to its type and
  message; request-retry starts no new round: max-retry-interval is 0, so no cooldown is waited for); when every account was already cooling down, the selector's own 429
  `model_cooldown` with `Retry-After` (on /v1/messages: Anthropic's `rate_limit_error` shape, "All
  credentials for model M are cooling down via provider claude", no Retry-After);
* an account file added or changed (a login, a PATCH of another account's status) ends every
  account's model cooldowns and error status at once (claude's credential-wide cooldown stays);
  the real binary also rewrites a claude file itself after its first request (the profile it
  fetched), with the same effect: that rewrite is not modelled here;
* each attempt is one usage-queue record (redisqueue/plugin.go's fields: `auth_index`, `source`,
  `tokens`, `token_breakdown`, `failed`, `fail`...), kept `redis-usage-queue-retention-seconds`
  (default 60) whether read or not.
`auth_index` is the binary's: sha256("<type>:<absolute path>")[:8 bytes], hex.
Simplified: tokens count words; the provider's quota windows are one clock per account (every window
opens, fills and resets together); the binary's backoff ladder for 429s without a reset time and its
per-model cooldowns for other failures are not modelled (no other upstream failure exists here).

Test-only additions to the real surface:

    POST /v0/management/_double/complete  {"state", "ok": true|false, "error", "email", "username"}
        Finishes a pending login (meant for device flows: github, qwen, kimi, xai, kiro), behind the
        normal management auth: ok=true writes the account file (0600) and completes the session;
        ok=false fails it with `error`.

    POST /oauth-callback also takes "email" (in the body, or `email=` in redirect_url's query) for
    the account it writes. Chat replies are `double(<model>): <last user text>` and token usage
    counts words. A model id starting with `double-fail` answers 500 on every API route (a failing
    upstream, for fallbacks); `double-status-<code>` answers that status (`-after-<s>` adds
    `Retry-After: <s>`); `double-slow-<ms>` is served with <ms> between stream chunks; `double-cut`
    is served, but its stream breaks off after two chunks. A JSON answer on the client API is gzipped
    when the request's Accept-Encoding asks for gzip (as gin's gzip middleware does). The client
    API's POSTs are kept (the last 500: time, path, headers, body) for `GET /_double/requests`, and
    `DELETE /_double/requests` forgets them (no auth: for the tests' eyes only). `POST /v0/management/api-call` plays the two quota upstreams itself
    (no network here): codex `wham/usage` and claude `oauth/usage` answer the values in
    CODEX_WINDOWS / CLAUDE_WINDOWS for the account whose token the request carries; an account file's
    `double_upstream: {"status_code", "body"}` replaces that answer (failures, hostile bodies); any
    other URL is "request failed" (502). See "Accounts in rotation" below for pools of accounts. X-Forwarded-For / X-Real-IP are trusted (as gin does by default), so
    tests can play a remote client.
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import stat
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

try:  # optional: real bcrypt hashes when the library happens to be installed
    import bcrypt as _bcrypt  # type: ignore
except Exception:  # pragma: no cover - depends on the environment
    _bcrypt = None


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    try:
        return float(_env(name, str(default)))
    except ValueError:
        return default


# =============================================================================================
# Release assets (sheet: "Release assets"; "Mainline CLIProxyAPI v7": Assets)
# The archive's executable is `cli-proxy-api-plus` on the Plus line, `cli-proxy-api` on the
# mainline; the double runs as the edition whose name it was installed under.
# =============================================================================================


def _edition() -> str:
    forced = _env("CLIPROXY_DOUBLE_EDITION").lower()
    if forced in ("mainline", "plus"):
        return forced
    exe = os.path.basename(sys.argv[0] if sys.argv else "")
    return "mainline" if exe.removesuffix(".exe") == "cli-proxy-api" else "plus"


EDITION = _edition()
MAINLINE = EDITION == "mainline"


# =============================================================================================
# Command line (sheet: "Command line"; mainline: "Version", login flags under "Logins built in")
# Go `flag` semantics (-x and --x, -x=v, unknown flag -> exit 2), the banner as first stdout line,
# no -version flag, exit 0 on a bad config or a taken port, `.env` read from the working directory.
# =============================================================================================

def _packaged_as() -> tuple[str | None, str]:
    """(version, quirk) from the trailer tests/fakes/today.double_binary appends to each release's
    build (`# build of <repo> <tag>`, `# quirk: <name>`): every release reports its own version,
    as a real build does. (None, "") when run straight from tests/fakes/. Quirks of broken builds:
    `no-listener` (never listens, exit 0), `upstream-fails` (ready, but every model answers 500),
    `fails-at-home` (serves with any config file but FlowGate's usual `config.yaml`: it passes on a
    switch's bridge, then fails at the configured address, after traffic moved)."""
    try:
        with open(sys.argv[0], "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 512))
            tail = fh.read().decode("utf-8", "replace")
    except (OSError, IndexError):
        return None, ""
    build = re.search(r"^# build of \S+ v?([0-9][\w.+-]*)$", tail, re.M)
    quirk = re.search(r"^# quirk: ([\w-]+)$", tail, re.M)
    return (build.group(1) if build else None), (quirk.group(1) if quirk else "")


_BUILT, QUIRK = _packaged_as()
VERSION = (_BUILT + ("" if MAINLINE else "-plus")) if _BUILT else ("7.2.140" if MAINLINE else "6.8.16-0-plus")
COMMIT = "double"
BUILD_DATE = "2026-01-01T00:00:00Z"
BANNER = f"CLIProxyAPI Version: {VERSION}, Commit: {COMMIT}, BuiltAt: {BUILD_DATE}"

# The login flags FlowGate's providers fall back to (tasks/accounts/providers.py), per edition.
if MAINLINE:
    BOOL_FLAGS = {
        "codex-login": "Login to Codex using OAuth",
        "codex-device-login": "Login to Codex using the device flow",
        "claude-login": "Login to Claude using OAuth",
        "antigravity-login": "Login to Antigravity using OAuth",
        "kimi-login": "Login to Kimi using the device flow",
        "xai-login": "Login to xAI using the device flow",
        "no-browser": "Don't open browser automatically for OAuth",
    }
else:
    BOOL_FLAGS = {
        "login": "Login Google Account",
        "codex-login": "Login to Codex using OAuth",
        "claude-login": "Login to Claude using OAuth",
        "qwen-login": "Login to Qwen using OAuth",
        "iflow-login": "Login to iFlow using OAuth",
        "antigravity-login": "Login to Antigravity using OAuth",
        "kimi-login": "Login to Kimi using OAuth",
        "kiro-aws-login": "Login to Kiro using AWS Builder ID (device code flow)",
        "github-copilot-login": "Login to GitHub Copilot using device flow",
        "no-browser": "Don't open browser automatically for OAuth",
    }
VALUE_FLAGS = {
    "config": ("string", "Configure File Path"),
    "oauth-callback-port": ("int", "Override OAuth callback port"),
}
LOGIN_FLAGS = set(BOOL_FLAGS) - {"no-browser"}

_log_lock = threading.Lock()


def log(level: str, msg: str) -> None:
    """One server log line on stdout, flushed: the parent reads stdout as the server log."""
    ts = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    line = f"[{ts}] [{level:<5}] {msg}\n"
    with _log_lock:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass


def _usage(prog: str) -> str:
    lines = [f"Usage of {prog}:"]
    for name in sorted(set(BOOL_FLAGS) | set(VALUE_FLAGS)):
        if name in BOOL_FLAGS:
            lines.append(f"  -{name}\n    \t{BOOL_FLAGS[name]}")
        else:
            kind, text = VALUE_FLAGS[name]
            lines.append(f"  -{name} {kind}\n    \t{text}")
    return "\n".join(lines) + "\n"


def _flag_fail(prog: str, message: str) -> None:
    sys.stderr.write(message + "\n" + _usage(prog))
    sys.stderr.flush()
    sys.exit(2)


def parse_flags(argv: list[str], prog: str) -> dict:
    values: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or not arg.startswith("-") or arg == "--":
            break  # the first non-flag argument stops parsing, like Go
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name.startswith("-") or name.startswith("="):
            _flag_fail(prog, f"bad flag syntax: {arg}")
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in BOOL_FLAGS:
            if value is None or value.lower() in ("1", "t", "true"):
                values[name] = True
            elif value.lower() in ("0", "f", "false"):
                values[name] = False
            else:
                _flag_fail(prog, f'invalid boolean value "{value}" for -{name}: parse error')
        elif name in VALUE_FLAGS:
            if value is None:
                if i + 1 >= len(argv):
                    _flag_fail(prog, f"flag needs an argument: -{name}")
                i += 1
                value = argv[i]
            if VALUE_FLAGS[name][0] == "int":
                try:
                    int(value, 0)
                except ValueError:
                    _flag_fail(prog, f'invalid value "{value}" for flag -{name}: parse error')
            values[name] = value
        else:
            _flag_fail(prog, f"flag provided but not defined: -{name}")
        i += 1
    return values


def load_dotenv(path: str) -> None:
    """godotenv.Load: KEY=VALUE lines, never overriding variables already set."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].strip()
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "cli-proxy-api-plus"
    sys.stdout.write(BANNER + "\n")
    sys.stdout.flush()

    if QUIRK == "no-listener":  # a broken build: what the real binary does on a config it cannot use
        log("error", "failed to start HTTP server: this build is broken (test double quirk: no-listener)")
        return 0
    exit_code = os.environ.get("CLIPROXY_DOUBLE_EXIT_AT_START", "").strip()
    if exit_code:
        log("error", f"CLIPROXY_DOUBLE_EXIT_AT_START={exit_code}: exiting on request")
        try:
            return int(exit_code)
        except ValueError:
            return 1

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    flags = parse_flags(argv, prog)
    if any(flags.get(name) for name in LOGIN_FLAGS):
        log("error", "interactive login flags are not supported by the test double; use the management API")
        return 1

    load_dotenv(os.path.join(os.getcwd(), ".env"))
    config_path = flags.get("config") or os.path.join(os.getcwd(), "config.yaml")
    if QUIRK == "fails-at-home" and os.path.basename(config_path) == "config.yaml":
        log("error", "failed to start HTTP server: this build fails at its usual address (test double quirk)")
        return 0
    try:
        text = read_config_file(config_path)
        cfg = parse_config_text(text)
    except ConfigError as exc:
        log("error", f"failed to load config: {exc}")
        return 0  # (!) exit 0 on an invalid config
    if hash_plaintext_secret(config_path, cfg):
        try:
            text = read_config_file(config_path)
        except ConfigError:
            pass

    log("info", BANNER)
    state = State(config_path, cfg, text)
    try:
        ensure_auth_dir(state.auth_dir)
    except OSError as exc:
        log("error", f"failed to resolve auth directory: {exc}")
        return 0
    state.auth.rescan()
    threading.Thread(target=state.watch_loop, name="watcher", daemon=True).start()

    delay = _env_float("CLIPROXY_DOUBLE_START_DELAY", 0.0)
    if delay > 0 and stop.wait(delay):
        log("info", "received shutdown signal before the server started")
        state.stop.set()
        return 0

    host, port = cfg["host"], cfg["port"]
    log("info", f"API server started successfully on: {host}:{port}")  # (!) said before the bind
    try:
        server = make_server(host, port, state)
    except RuntimeError as exc:
        log("error", f"failed to start HTTP server: {exc}")
        state.stop.set()
        return 0  # (!) exit 0 when the port is taken
    actual_host, actual_port = server.server_address[:2]
    log("info", f"double: listening on {go_listen_addr(actual_host, actual_port)}")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True).start()
    while not stop.wait(0.5):
        pass
    log("info", "received shutdown signal, shutting down")
    state.stop.set()
    server.shutdown()
    server.server_close()
    log("info", "server stopped")
    return 0


class DoubleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # Go sets SO_REUSEADDR too; a *listening* port still conflicts
    request_queue_size = 128

    def __init__(self, address, handler, state: "State", family: int = socket.AF_INET):
        self.address_family = family
        self.state = state
        super().__init__(address, handler)

    def server_bind(self):
        # skip HTTPServer.server_bind's getfqdn() (reverse DNS can hang without a network)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


def go_listen_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_server(host: str, port: int, state: "State") -> DoubleServer:
    """Bind like net.Listen("tcp", host:port); raises RuntimeError with a Go-style message."""
    addr = go_listen_addr(host, port)
    if port < 0 or port > 65535:
        raise RuntimeError(f"listen tcp: address {addr}: invalid port")
    bind_host = host or "0.0.0.0"  # empty host = all interfaces
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    try:
        if family == socket.AF_INET:
            try:
                ipaddress.IPv4Address(bind_host)
            except ValueError:
                infos = socket.getaddrinfo(bind_host, port, socket.AF_INET, socket.SOCK_STREAM)
                bind_host = infos[0][4][0]
        return DoubleServer((bind_host, port), Handler, state, family)
    except socket.gaierror:
        raise RuntimeError(f"listen tcp: lookup {host}: no such host") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise RuntimeError(f"listen tcp {addr}: bind: {reason}") from None


# =============================================================================================
# config.yaml keys (sheet: "config.yaml keys FlowGate cares about")
# Typed like the Go struct (a wrong type fails the load, Go-style message); the plaintext
# management key is bcrypt-hashed and written back into the file; the file and the auth-dir are
# polled and hot-reloaded (host/port need a restart); MANAGEMENT_PASSWORD enables management and
# forces allow-remote on.
# =============================================================================================


class ConfigError(Exception):
    pass


_YAML_TAGS = {bool: "!!bool", int: "!!int", float: "!!float", str: "!!str", list: "!!seq", dict: "!!map"}


def _type_error(key: str, value, want: str) -> ConfigError:
    tag = _YAML_TAGS.get(type(value), "!!str")
    shown = value if not isinstance(value, (list, dict)) else ""
    if isinstance(shown, bool):
        shown = str(shown).lower()
    return ConfigError(
        f"failed to parse config file: yaml: unmarshal errors:\n  cannot unmarshal {tag} `{shown}` into {want} (key {key})"
    )


def _as_str(d: dict, key: str, default: str = "", path: str = "") -> str:
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, (list, dict)):
        raise _type_error(path + key, v, "string")
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _as_int(d: dict, key: str, default: int = 0, path: str = "") -> int:
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _type_error(path + key, v, "int")
    return int(v)


def _as_bool(d: dict, key: str, default: bool = False, path: str = "") -> bool:
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise _type_error(path + key, v, "bool")
    return v


def _as_map(d: dict, key: str, path: str = "") -> dict:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _type_error(path + key, v, "map")
    return v


def normalize_config(data: dict) -> dict:
    rm = _as_map(data, "remote-management")
    routing = _as_map(data, "routing")
    keys = data.get("api-keys")
    if keys is None:
        keys = []
    if not isinstance(keys, list):
        raise _type_error("api-keys", keys, "[]string")
    api_keys = []
    for k in keys:
        if isinstance(k, (list, dict)):
            raise _type_error("api-keys", k, "string")
        if k is not None and str(k).strip():
            api_keys.append(str(k).strip())
    strategy = _as_str(routing, "strategy", "round-robin", "routing.").strip().lower()
    if strategy not in ("round-robin", "fill-first"):
        strategy = "round-robin"
    return {
        "host": _as_str(data, "host").strip(),
        "port": _as_int(data, "port"),
        "auth-dir": _as_str(data, "auth-dir").strip(),
        "api-keys": api_keys,
        "debug": _as_bool(data, "debug"),
        "logging-to-file": _as_bool(data, "logging-to-file"),
        "request-log": _as_bool(data, "request-log"),
        "usage-statistics-enabled": _as_bool(data, "usage-statistics-enabled"),
        "proxy-url": _as_str(data, "proxy-url"),
        "request-retry": _as_int(data, "request-retry"),
        "routing": {"strategy": strategy},
        "remote-management": {
            "allow-remote": _as_bool(rm, "allow-remote", False, "remote-management."),
            "secret-key": _as_str(rm, "secret-key", "", "remote-management.").strip(),
            "disable-control-panel": _as_bool(rm, "disable-control-panel", False, "remote-management."),
        },
        "raw": data,
    }


def parse_config_text(text: str) -> dict:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid yaml"
        raise ConfigError(f"failed to parse config file: yaml: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"failed to parse config file: yaml: unmarshal errors:\n  line 1: cannot unmarshal {_YAML_TAGS.get(type(data), '!!str')} into config.Config"
        )
    return normalize_config(data)


def read_config_file(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"failed to read config file: open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise ConfigError(f"failed to read config file: read {path}: is a directory") from None
    except OSError as exc:
        raise ConfigError(f"failed to read config file: open {path}: {(exc.strerror or str(exc)).lower()}") from None


def atomic_write(path: str, data: bytes, mode: int | None = None) -> None:
    """Write a new file and rename it over `path` (new inode); keeps the old mode unless given one."""
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = 0o600
    fd, tmp = tempfile.mkstemp(prefix=".cliproxy-double-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_in_place(path: str, data: bytes) -> None:
    """The real binary writes its config back with os.Create: the same inode, truncated and written."""
    with open(path, "r+b") as fh:
        fh.write(data)
        fh.truncate()


# -- remote-management.secret-key: bcrypt when available, otherwise a bcrypt-looking stand-in -----

_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BCRYPT_RE = re.compile(r"\$2[aby]\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})")


def looks_like_bcrypt(value: str) -> bool:
    return value.startswith(("$2a$", "$2b$", "$2y$"))


def _fake_digest(salt: str, key: str) -> str:
    data = hashlib.sha256((salt + key).encode("utf-8")).digest()
    return "".join(_BCRYPT_ALPHABET[b % 64] for b in data[:31])


def hash_secret(key: str) -> str:
    if _bcrypt is not None:
        return _bcrypt.hashpw(key.encode("utf-8"), _bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
    salt = "".join(secrets.choice(_BCRYPT_ALPHABET) for _ in range(22))
    return "$2a$10$" + salt + _fake_digest(salt, key)


def verify_secret(hashed: str, provided: str) -> bool:
    if not hashed or not provided or not looks_like_bcrypt(hashed):
        return False
    if _bcrypt is not None:
        try:
            if _bcrypt.checkpw(provided.encode("utf-8"), hashed.encode("utf-8")):
                return True
        except ValueError:
            pass
    m = _BCRYPT_RE.fullmatch(hashed)
    if not m:
        return False
    return hmac.compare_digest(_fake_digest(m.group(2), provided), m.group(3))


_SECRET_LINE = re.compile(
    r"^(?P<indent>[ \t]+)secret-key[ \t]*:[ \t]*"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^#]*?)"
    r"(?P<suffix>[ \t]+#.*)?[ \t]*$"
)
_RM_BLOCK = re.compile(r"^remote-management[ \t]*:[ \t]*(#.*)?$")


def replace_secret_in_text(text: str, new_value: str) -> str | None:
    """Targeted edit of `remote-management: / secret-key:` keeping every other byte."""
    lines = text.splitlines(keepends=True)
    in_block = False
    for idx, line in enumerate(lines):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if not in_block:
            in_block = bool(_RM_BLOCK.match(body))
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if not body[0].isspace():
            in_block = bool(_RM_BLOCK.match(body))
            continue
        m = _SECRET_LINE.match(body)
        if m:
            new_line = f"{m.group('indent')}secret-key: {new_value}{m.group('suffix') or ''}"
            lines[idx] = new_line + line[len(body):]
            return "".join(lines)
    return None


def persist_hashed_secret(config_path: str, plaintext: str, hashed: str) -> bool:
    """Write the hash back into the config file. Returns True when the file was rewritten."""
    try:
        text = read_config_file(config_path)
        current = parse_config_text(text)
    except ConfigError:
        return False
    if current["remote-management"]["secret-key"] != plaintext:
        return False  # changed under our feet; the watcher will see the new content
    new_text = replace_secret_in_text(text, hashed)
    ok = False
    if new_text is not None:
        try:
            ok = parse_config_text(new_text)["remote-management"]["secret-key"] == hashed
        except ConfigError:
            ok = False
    if not ok:  # exotic layout (flow style, anchors...): rewrite the document, comments lost
        raw = copy.deepcopy(current["raw"])
        rm = raw.get("remote-management") if isinstance(raw.get("remote-management"), dict) else {}
        rm["secret-key"] = hashed
        raw["remote-management"] = rm
        new_text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    try:
        write_in_place(config_path, new_text.encode("utf-8"))
    except OSError as exc:
        log("warn", f"failed to persist hashed management key: {exc}")
        return False
    return True


def hash_plaintext_secret(config_path: str, cfg: dict) -> bool:
    """(!) A plaintext secret-key becomes its hash, in `cfg` and in the file (True when rewritten)."""
    secret = cfg["remote-management"]["secret-key"]
    if not secret or looks_like_bcrypt(secret):
        return False
    hashed = hash_secret(secret)
    cfg["remote-management"]["secret-key"] = hashed
    raw_rm = cfg["raw"].get("remote-management")
    if isinstance(raw_rm, dict):
        raw_rm["secret-key"] = hashed
    return persist_hashed_secret(config_path, secret, hashed)


# -- auth-dir: `~` expanded, created if missing ----------------------------------------------------


def resolve_auth_dir(value: str) -> str:
    return os.path.abspath(os.path.expanduser(value or "~/.cli-proxy-api"))


def ensure_auth_dir(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


# -- the running configuration and its hot reload ---------------------------------------------------

POLL_INTERVAL = 0.3  # seconds between looks at the config file and the auth-dir


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class State:
    """What the server shares between requests: the configuration (hot-reloaded here), the
    auth-dir's accounts (AuthDir), the login sessions (Logins) and the usage statistics."""

    def __init__(self, config_path: str, cfg: dict, text: str):
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.config_path = config_path
        self.cfg = cfg
        self.config_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        # The real binary puts an inotify watch on the config file itself: a file renamed over it is
        # another inode, the watch is lost and no change is reloaded again (found against the real one).
        self.watched_inode = _inode(config_path)
        self.auth_dir = resolve_auth_dir(cfg["auth-dir"])
        self.bound_host, self.bound_port = cfg["host"], cfg["port"]
        self.env_secret = os.environ.get("MANAGEMENT_PASSWORD", "").strip()
        self.mgmt_enabled = bool(cfg["remote-management"]["secret-key"] or self.env_secret)
        self.failed_attempts: dict[str, dict] = {}  # remote address -> failures / ban (management auth)
        self.catalog = Catalog(os.environ.get("CLIPROXY_DOUBLE_CATALOG")
                               or os.path.join(os.path.dirname(os.path.abspath(__file__)), "models.json"))
        self.stream_delay = _env_float("CLIPROXY_DOUBLE_STREAM_DELAY", 0.0)
        self.journal: collections.deque = collections.deque(maxlen=500)  # the client API's POSTs
        self.callback_delay = _env_float("CLIPROXY_DOUBLE_CALLBACK_DELAY", 0.05)
        self.auth = AuthDir(self)
        self.logins = Logins(self)
        self.usage = Usage(self)
        self.pool = Pool(self)
        self._missing_logged = False

    def check_config(self) -> None:
        if self.watched_inode is not None and _inode(self.config_path) != self.watched_inode:
            return  # the watched inode was replaced: as in the real binary, this watch sees nothing more
        try:
            with open(self.config_path, "rb") as fh:
                raw = fh.read()
        except OSError:
            if not self._missing_logged:
                log("warn", f"config file {self.config_path} is not readable; keeping the current configuration")
                self._missing_logged = True
            return
        self._missing_logged = False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self.config_digest:
            return
        try:
            new_cfg = parse_config_text(raw.decode("utf-8", errors="replace"))
        except ConfigError as exc:
            self.config_digest = digest
            log("error", f"failed to reload config: {exc}")
            return
        if hash_plaintext_secret(self.config_path, new_cfg):
            try:
                with open(self.config_path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            except OSError:
                pass
        self.config_digest = digest
        self.apply_config(new_cfg)

    def apply_config(self, new_cfg: dict) -> None:
        with self.lock:
            old = self.cfg
            self.cfg = new_cfg
            changes = [key for key in ("api-keys", "debug", "usage-statistics-enabled", "proxy-url", "request-retry",
                                       "routing", "remote-management") if old.get(key) != new_cfg.get(key)]
            if (new_cfg["host"], new_cfg["port"]) != (self.bound_host, self.bound_port):
                log("warn", "host/port changed in config; a restart is required to apply it")
            new_auth = resolve_auth_dir(new_cfg["auth-dir"])
            if new_auth != self.auth_dir:
                changes.append("auth-dir")
                try:
                    ensure_auth_dir(new_auth)
                except OSError as exc:
                    log("error", f"failed to create auth directory {new_auth}: {exc}")
                self.auth_dir = new_auth
                self.auth.forget()
            was = self.mgmt_enabled
            self.mgmt_enabled = bool(self.env_secret or new_cfg["remote-management"]["secret-key"])
            if was != self.mgmt_enabled:
                log("info", "management routes " + ("enabled after secret key update" if self.mgmt_enabled
                                                    else "disabled after secret key removal"))
        log("info", "config file changed, reloaded" + (f" ({', '.join(changes)})" if changes else ""))
        self.auth.rescan()

    def watch_loop(self) -> None:
        while not self.stop.wait(POLL_INTERVAL):
            try:
                self.check_config()
            except Exception as exc:  # never let the watcher die
                log("error", f"config watcher: {exc}")
            try:
                self.auth.rescan()
            except Exception as exc:
                log("error", f"auth-dir watcher: {exc}")


# =============================================================================================
# HTTP surface (sheet: "HTTP surface"; mainline: "Readiness")
# `GET /` without auth on both editions, `GET /healthz` on the mainline only; the client API with
# an API key (Bearer, X-Api-Key, X-Goog-Api-Key, ?key=), or none at all when `api-keys` is empty.
# Models come from the enabled account files (see "Account files in auth-dir" below) plus
# CLIPROXY_DOUBLE_MODELS; replies echo the last user text, usage counts words.
# =============================================================================================

FAILING_MODEL_PREFIX = "double-fail"  # every API route answers 500 for a model id starting with this


def openai_error(message: str, etype: str = "invalid_request_error", code: str | None = None) -> dict:
    err = {"message": message, "type": etype}
    if code:
        err["code"] = code
    return {"error": err}


def content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in (None, "text", "input_text", "output_text"):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
        return " ".join(parts)
    return ""


def words(text: str) -> int:
    return len(text.split())


def reply_for(model: str, user_text: str) -> str:
    return f"double({model}): {user_text}" if user_text else f"double({model}):"


def split_deltas(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [""]


def parsed_query(query: dict) -> dict:
    return {k: v[0] if len(v) == 1 else v for k, v in query.items()}


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


class HTTPSurface(BaseHTTPRequestHandler):
    """Request plumbing, `/`, `/healthz` and the client API; Handler adds the management API."""

    protocol_version = "HTTP/1.1"
    server: DoubleServer

    def log_message(self, format, *args):  # noqa: A002  (the default stderr access log; we log ourselves)
        pass

    def send_response(self, code, message=None):
        self._status = code
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    @property
    def state(self) -> State:
        return self.server.state

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        self._status = 0
        self._delay, self._cut_after = None, None
        self._served_by: dict | None = None  # the account serving this request
        self._extra_headers: list[tuple[str, str]] = []
        self._headers_done = False
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        try:
            self._body = self._read_body()
            self._route(method, path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            log("error", f"handler error on {method} {path}: {exc}\n{traceback.format_exc()}")
            if not self._headers_done:
                try:
                    self._json(500, {"error": str(exc)})
                except OSError:
                    self.close_connection = True
            else:
                self.close_connection = True
        finally:
            elapsed = (time.monotonic() - started) * 1000
            log("info", f"{self._status:3d} | {elapsed:10.3f}ms | {self._client_ip():>15} | {method:<7} \"{path}\"")

    def _client_ip(self) -> str:
        for header in ("X-Forwarded-For", "X-Real-IP"):  # trusted, as gin does by default
            value = self.headers.get(header)
            if value:
                first = value.split(",")[0].strip()
                try:
                    return str(ipaddress.ip_address(first))
                except ValueError:
                    pass
        ip = self.client_address[0]
        return ip[7:] if ip.startswith("::ffff:") else ip

    def _send(self, status: int, body: bytes, ctype: str, headers: list[tuple[str, str]] | None = None) -> None:
        if (body and ctype.startswith("application/json") and self.path.startswith("/v1/")
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            import gzip

            body, headers = gzip.compress(body), [*(headers or []), ("Content-Encoding", "gzip")]
        self.send_response(status)
        for k, v in self._extra_headers + (headers or []):
            self.send_header(k, v)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._headers_done = True
        if body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: list[tuple[str, str]] | None = None) -> None:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _not_found(self) -> None:
        self._send(404, b"404 page not found", "text/plain")

    def _start_stream(self) -> None:
        self.send_response(200)
        for k, v in self._extra_headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "keep-alive")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._headers_done = True

    def _chunk(self, data: str) -> None:
        cut = getattr(self, "_cut_after", None)
        if cut is not None:
            if cut == 0:  # `double-cut`: the connection drops mid-stream
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                raise BrokenPipeError("double-cut")
            self._cut_after = cut - 1
        raw = data.encode("utf-8")
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        delay = getattr(self, "_delay", None) or self.state.stream_delay
        if delay > 0:
            time.sleep(delay)

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _sse_data(self, obj) -> None:
        self._chunk("data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n")

    def _sse_event(self, event: str, obj) -> None:
        self._chunk(f"event: {event}\ndata: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n")

    def _json_body(self, invalid: dict | None = None) -> dict | None:
        """The request's JSON object, or None after answering 400: `invalid` (the management API's
        own shape) or an OpenAI-style error."""
        try:
            data = json.loads(self._body.decode("utf-8") or "{}")
            why = "Invalid request: body must be a JSON object"
        except (ValueError, UnicodeDecodeError) as exc:
            data, why = None, f"Invalid request: {exc}"
        if isinstance(data, dict):
            return data
        self._json(400, invalid if invalid is not None else openai_error(why))
        return None

    # -- routes -----------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict) -> None:
        if path == "/" and method == "GET":  # the readiness probe on both editions
            self._json(200, {"message": "CLI Proxy API Server",
                             "endpoints": ["POST /v1/chat/completions", "POST /v1/completions", "GET /v1/models"]})
            return
        if path == "/healthz" and method == "GET" and MAINLINE:  # mainline only: the Plus tags have none
            self._json(200, {"status": "ok"})
            return
        if path.startswith("/v0/management/"):
            self._management(method, path[len("/v0/management"):], query)
            return
        if path == "/_double/requests" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.state.journal.clear()
            self._json(200, list(self.state.journal))
            return
        api_routes = {
            ("GET", "/v1/models"): lambda: self._models(query),
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/responses"): self._responses,
            ("POST", "/v1/messages"): self._messages,
            ("POST", "/v1/messages/count_tokens"): self._count_tokens,
        }
        handler = api_routes.get((method, path.rstrip("/") if path != "/" else path))
        if handler is None:
            self._not_found()
            return
        if method == "POST":
            try:
                body = json.loads(self._body.decode("utf-8") or "null")
            except (ValueError, UnicodeDecodeError):
                body = None
            self.state.journal.append({"at": time.time(), "path": path, "query": parsed_query(query), "body": body,
                                       "headers": {k.lower(): v for k, v in self.headers.items()}})
        if self._check_api_key(query):
            handler()

    def _management(self, method: str, sub: str, query: dict) -> None:
        raise NotImplementedError  # Handler, below

    def _check_api_key(self, query: dict) -> bool:
        with self.state.lock:
            keys = list(self.state.cfg["api-keys"])
        if not keys:
            return True  # (!) an empty api-keys list: no client authentication at all
        candidates = []
        auth = self.headers.get("Authorization")
        if auth:
            parts = auth.split(" ", 1)
            candidates.append(parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else auth.strip())
        for header in ("X-Goog-Api-Key", "X-Api-Key"):
            value = self.headers.get(header)
            if value:
                candidates.append(value.strip())
        for name in ("key", "auth_token"):
            if query.get(name) and query[name][0]:
                candidates.append(query[name][0])
        candidates = [c for c in candidates if c]
        if not candidates:
            self._json(401, {"error": "Missing API key"})
            return False
        if any(hmac.compare_digest(c.encode(), k.encode()) for c in candidates for k in keys):
            return True
        self._json(401, {"error": "Invalid API key"})
        return False

    # -- /v1 --------------------------------------------------------------------------------------

    def _models(self, query: dict) -> None:
        if "client_version" in query:  # Codex asks for its own catalog shape (the real one since v7.1.4)
            self._json(200, {"models": codex_client_models(self.state.auth.models())})
            return
        self._json(200, {"object": "list", "data": self.state.auth.models()})

    def _resolve(self, data: dict, anthropic: bool = False, metered: bool = True) -> str | None:
        """The request's model when an enabled account serves it (a thinking suffix `<id>(<level>)`
        is accepted for a served id); otherwise the error is sent and None returned."""
        model = data.get("model")
        model = model.strip() if isinstance(model, str) else ""
        if model.startswith(FAILING_MODEL_PREFIX) or QUIRK == "upstream-fails":  # fallback and upgrade tests
            message = f"upstream failure for {model} (double)"
            body = ({"type": "error", "error": {"type": "api_error", "message": message}} if anthropic
                    else openai_error(message, "server_error", code="upstream_error"))
            self._json(500, body)
            return None
        fault = re.fullmatch(r"double-status-(\d{3})(?:-after-(\d+))?", model)
        if fault:
            message = f"double status {fault.group(1)} for {model}"
            body = ({"type": "error", "error": {"type": "api_error", "message": message}} if anthropic
                    else openai_error(message, "server_error"))
            self._json(int(fault.group(1)), body, [("Retry-After", fault.group(2))] if fault.group(2) else None)
            return None
        if model.startswith("double-slow-"):
            self._delay = int(model.rsplit("-", 1)[1]) / 1000
            return model
        if model == "double-cut":
            self._cut_after = 2
            return model
        if not model or not self.state.auth.serves(re.sub(r"\([^()]*\)$", "", model)):
            message = f"unknown provider for model {model}"
            if anthropic:
                body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
            else:  # handlers_routing.go: the sheet's body, `param` included
                body = {"error": {**openai_error(message, code="model_not_found")["error"], "param": "model"}}
            self._json(400, body)
            self.state.usage.record(self.path.split("?")[0], model or "-", 0, False)
            return None
        return model if self._rotate(re.sub(r"\([^()]*\)$", "", model), metered, data.get("stream") is True) else None

    def _rotate(self, model: str, metered: bool, stream: bool = False) -> bool:
        """Serve the request from the next account in rotation (conductor_execution.go
        executeMixedOnce): an account whose subscription is used up answers its provider's 429, the
        binary cools it down and tries the next one in the same round; when none is left the client
        gets the last upstream error (request-retry waits for no cooldown: max-retry-interval 0), or,
        when every account was already cooling down, the selector's model_cooldown 429."""
        st, now = self.state, time.time()
        with st.lock:
            candidates = [a for a in st.auth.accounts.values()
                          if not a["disabled"] and any(m["id"] == model for m in st.auth.served_by(a))]
        tried: set[str] = set()
        last = None
        while True:
            got = st.pool.pick(model, candidates, tried, now)
            if not isinstance(got, dict):
                break
            tried.add(got["name"])
            reset = st.pool.exhausted(got["name"], got["type"], now) if metered else None
            if reset is None:
                st.pool.served(got, model, now, metered)
                self._served_by = got
                return True
            body, headers, until, credential = upstream_refusal(got, reset, now)
            text = json.dumps(body, separators=(",", ":"))
            log("warn", f"{got['type']} {model} via {got['name']}: 429 {text}")
            st.pool.refused(got, model, text, until, credential, now)
            st.usage.record(self.path.split("?")[0], model, 0, False, account=got, fail=(429, text))
            last = body
        if last is not None:
            if stream and "error" in last and self.path.split("?")[0] == "/v1/responses":
                # found against the real v7.2.140: a streamed Responses request gets the codex error
                # cut down to its type and message (no resets_at); every other route gets it whole
                last = {"error": {"type": last["error"]["type"], "message": last["error"]["message"]}}
            self._json(429, last)
        elif got is not None and self.path.split("?")[0].startswith("/v1/messages"):
            # the Messages handler words the selector's error in Anthropic's shape, without Retry-After
            self._json(429, {"type": "error", "error": {"type": "rate_limit_error", "message":
                             f"All credentials for model {model} are cooling down via provider {candidates[0]['type']}"}})
        elif got is not None:
            body, headers = cooldown_error(model, candidates[0]["type"], got, now)
            self._json(429, body, headers)
        else:
            self._json(503, {"error": {"message": "no auth available", "type": "server_error", "code": "auth_unavailable"}})
        return False

    def _chat(self) -> None:
        data = self._json_body()
        model = self._resolve(data) if data is not None else None
        if model is None:
            return
        messages = data.get("messages") if isinstance(data.get("messages"), list) else []
        prompt_words = sum(words(content_text(m.get("content"))) for m in messages if isinstance(m, dict))
        last_user = ""
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user":
                last_user = content_text(m.get("content"))
        text = reply_for(model, last_user)
        usage = {"prompt_tokens": prompt_words, "completion_tokens": words(text), "total_tokens": prompt_words + words(text)}
        self._record("/v1/chat/completions", model, usage["prompt_tokens"], usage["completion_tokens"])
        cid, created = new_id("chatcmpl-"), int(time.time())
        if not data.get("stream"):
            self._json(200, {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                             "finish_reason": "stop"}],
                "usage": usage,
            })
            return
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        self._start_stream()
        self._sse_data({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]})
        for piece in split_deltas(text):
            self._sse_data({**base, "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]})
        self._sse_data({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
        self._end_openai_stream(data, base, usage)

    def _record(self, endpoint: str, model: str, input_tokens: int, output_tokens: int) -> None:
        self.state.usage.record(endpoint, model, input_tokens + output_tokens, True, account=self._served_by,
                                split=(input_tokens, output_tokens))

    def _end_openai_stream(self, data: dict, base: dict, usage: dict) -> None:
        """The usage chunk when `stream_options.include_usage` asks for it, then `[DONE]`."""
        opts = data.get("stream_options") if isinstance(data.get("stream_options"), dict) else {}
        if opts.get("include_usage"):
            self._sse_data({**base, "choices": [], "usage": usage})
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def _completions(self) -> None:
        data = self._json_body()
        model = self._resolve(data) if data is not None else None
        if model is None:
            return
        prompt = data.get("prompt")
        if isinstance(prompt, list):
            prompt = next((p for p in reversed(prompt) if isinstance(p, str)), "")
        prompt = prompt if isinstance(prompt, str) else ""
        text = reply_for(model, prompt)
        usage = {"prompt_tokens": words(prompt), "completion_tokens": words(text), "total_tokens": words(prompt) + words(text)}
        self._record("/v1/completions", model, usage["prompt_tokens"], usage["completion_tokens"])
        cid, created = new_id("cmpl-"), int(time.time())
        if not data.get("stream"):
            self._json(200, {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            })
            return
        base = {"id": cid, "object": "text_completion", "created": created, "model": model}
        self._start_stream()
        for piece in split_deltas(text):
            self._sse_data({**base, "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": None}]})
        self._sse_data({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]})
        self._end_openai_stream(data, base, usage)

    def _responses(self) -> None:
        data = self._json_body()
        model = self._resolve(data) if data is not None else None
        if model is None:
            return
        inp = data.get("input")
        instructions = data.get("instructions") if isinstance(data.get("instructions"), str) else None
        prompt_words = words(instructions or "")
        last_user = ""
        if isinstance(inp, str):
            last_user = inp
            prompt_words += words(inp)
        elif isinstance(inp, list):
            for item in inp:
                if not isinstance(item, dict) or item.get("type") not in (None, "message"):
                    continue
                t = content_text(item.get("content"))
                prompt_words += words(t)
                if item.get("role") == "user":
                    last_user = t
        text = reply_for(model, last_user)
        out_words = words(text)
        usage = {
            "input_tokens": prompt_words,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_words,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_words + out_words,
        }
        self._record("/v1/responses", model, prompt_words, out_words)
        resp_id, msg_id, created = new_id("resp_"), new_id("msg_"), int(time.time())
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        item_done = {"id": msg_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}

        def response_obj(status: str) -> dict:
            done = status == "completed"
            return {
                "id": resp_id,
                "object": "response",
                "created_at": created,
                "status": status,
                "background": False,
                "error": None,
                "incomplete_details": None,
                "instructions": instructions,
                "max_output_tokens": data.get("max_output_tokens"),
                "max_tool_calls": None,
                "model": model,
                "output": [item_done] if done else [],
                "parallel_tool_calls": data.get("parallel_tool_calls", True),
                "previous_response_id": data.get("previous_response_id"),
                "prompt_cache_key": None,
                "reasoning": {"effort": None, "summary": None},
                "safety_identifier": None,
                "service_tier": "default",
                "store": data.get("store", False),
                "temperature": data.get("temperature", 1.0),
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": data.get("tool_choice", "auto"),
                "tools": data.get("tools", []),
                "top_logprobs": 0,
                "top_p": data.get("top_p", 1.0),
                "truncation": "disabled",
                "usage": usage if done else None,
                "user": None,
                "metadata": data.get("metadata") or {},
            }

        if not data.get("stream"):
            self._json(200, response_obj("completed"))
            return
        seq = 0

        def emit(event_type: str, payload: dict) -> None:
            nonlocal seq
            self._sse_event(event_type, {"type": event_type, "sequence_number": seq, **payload})
            seq += 1

        where = {"item_id": msg_id, "output_index": 0, "content_index": 0}
        self._start_stream()
        emit("response.created", {"response": response_obj("in_progress")})
        emit("response.in_progress", {"response": response_obj("in_progress")})
        emit("response.output_item.added", {"output_index": 0, "item": {"id": msg_id, "type": "message", "status": "in_progress",
                                                                         "role": "assistant", "content": []}})
        emit("response.content_part.added", {**where, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})
        for piece in split_deltas(text):
            emit("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
        emit("response.output_text.done", {**where, "text": text, "logprobs": []})
        emit("response.content_part.done", {**where, "part": part})
        emit("response.output_item.done", {"output_index": 0, "item": item_done})
        emit("response.completed", {"response": response_obj("completed")})
        self._end_stream()

    @staticmethod
    def _anthropic_prompt(data: dict) -> tuple[int, str]:
        total = words(content_text(data.get("system")))
        last_user = ""
        messages = data.get("messages") if isinstance(data.get("messages"), list) else []
        for m in messages:
            if not isinstance(m, dict):
                continue
            t = content_text(m.get("content"))
            total += words(t)
            if m.get("role") == "user":
                last_user = t
        return total, last_user

    def _messages(self) -> None:
        data = self._json_body()
        model = self._resolve(data, anthropic=True) if data is not None else None
        if model is None:
            return
        in_words, last_user = self._anthropic_prompt(data)
        text = reply_for(model, last_user)
        out_words = words(text)
        self._record("/v1/messages", model, in_words, out_words)
        mid = new_id("msg_")
        usage = {"input_tokens": in_words, "output_tokens": out_words, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        message = {"id": mid, "type": "message", "role": "assistant", "model": model}
        if not data.get("stream"):
            self._json(200, {**message, "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                             "stop_sequence": None, "usage": usage})
            return
        self._start_stream()
        self._sse_event("message_start", {"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 0}}})
        self._sse_event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        self._sse_event("ping", {"type": "ping"})
        for piece in split_deltas(text):
            self._sse_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
        self._sse_event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._sse_event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                          "usage": {"output_tokens": out_words}})
        self._sse_event("message_stop", {"type": "message_stop"})
        self._end_stream()

    def _count_tokens(self) -> None:
        data = self._json_body()
        if data is None or self._resolve(data, anthropic=True, metered=False) is None:
            return
        in_words, _ = self._anthropic_prompt(data)
        self._json(200, {"input_tokens": in_words})


# =============================================================================================
# Management API (sheet: "Management API"; mainline: "Logins built in", "get-auth-status",
# "auth-files")
# Prefix /v0/management; key in `Authorization: Bearer` or X-Management-Key; every answer carries
# the X-CPA-* headers. In the sheet's order: the key check; starting a login (redirect flows,
# device flows, kiro); polling and (mainline) cancelling it; oauth-callback; auth-files; config and
# usage. Then the double's own completion route.
# =============================================================================================

# login start route -> provider (mainline: its built-ins only; no github, gemini-cli, qwen, iflow, kiro)
if MAINLINE:
    AUTH_URL_ENDPOINTS = {"codex-auth-url": "codex", "anthropic-auth-url": "anthropic",
                          "antigravity-auth-url": "antigravity", "kimi-auth-url": "kimi", "xai-auth-url": "xai"}
else:
    AUTH_URL_ENDPOINTS = {"codex-auth-url": "codex", "anthropic-auth-url": "anthropic", "gemini-cli-auth-url": "gemini",
                          "antigravity-auth-url": "antigravity", "iflow-auth-url": "iflow", "github-auth-url": "github",
                          "qwen-auth-url": "qwen", "kimi-auth-url": "kimi", "kiro-auth-url": "kiro"}
# redirect flows: where the provider sends the browser (the binary listens there with is_webui=true)
CALLBACK_PORTS = {"codex": 1455, "anthropic": 54545, "gemini": 8085, "antigravity": 51121, "iflow": 11451}
AUTHORIZE_URLS = {
    "codex": "https://auth.openai.com/oauth/authorize",
    "anthropic": "https://claude.ai/oauth/authorize",
    "gemini": "https://accounts.google.com/o/oauth2/auth",
    "antigravity": "https://accounts.google.com/o/oauth2/v2/auth",
    "iflow": "https://iflow.cn/oauth",
}
DEVICE_PROVIDERS = ("github", "qwen", "kimi", "xai")
KIRO_METHODS = ("aws", "builder-id", "google", "github")
SESSION_TTL = 1800.0 if MAINLINE else 600.0  # login sessions: 30 min on the mainline, 10 on Plus
OK_WINDOW = _env_float("CLIPROXY_DOUBLE_OK_WINDOW", 60.0)  # mainline: a finished login answers ok this long
BAN_AFTER, BAN_SECONDS = 5, 30 * 60  # failed management keys from one remote address
_STATE_RE = re.compile(r"^[A-Za-z0-9._-]{1,256}$")


def valid_state(state: str) -> bool:
    return bool(_STATE_RE.match(state)) and ".." not in state


def device_code() -> str:
    return f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"


class Logins:
    """Login sessions by state, in this process's memory. A kiro session's `status` carries its
    URL or code (`device_code|<url>|<code>`, `auth_url|<url>`) while it is still pending."""

    def __init__(self, state: State):
        self.state = state
        self.sessions: dict[str, dict] = {}

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [s for s, v in self.sessions.items() if now - v["created"] > SESSION_TTL]:
            self.sessions.pop(key, None)

    def start(self, provider: str, **extra) -> str:
        key = secrets.token_hex(16)
        with self.state.lock:
            self._purge()
            self.sessions[key] = {"provider": provider, "status": "", "created": time.monotonic(), **extra}
        return key

    def get(self, key: str) -> dict | None:
        with self.state.lock:
            self._purge()
            return self.sessions.get(key)

    @staticmethod
    def is_pending(session: dict) -> bool:
        if "done" in session:
            return False
        status = session.get("status", "")
        return not status or (session["provider"] == "kiro" and status.startswith(("device_code|", "auth_url|")))

    def complete(self, key: str, email: str = "", username: str = "") -> str:
        """Write the login's account file into auth-dir; returns its name. KeyError: no such session."""
        st = self.state
        with st.lock:
            session = self.sessions.get(key)
            if session is None:
                raise KeyError(key)
            extra = {k: v for k, v in session.items() if k in ("project_id", "method")}
            name, data = build_account(session["provider"], email, username, extra)
            path = os.path.join(st.auth_dir, name)
            ensure_auth_dir(st.auth_dir)
            atomic_write(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), mode=0o600)
            if MAINLINE:  # reports a finished login as ok for OK_WINDOW seconds, then forgets it
                session["done"] = time.monotonic()
            else:  # Plus forgets a completed session at once (and answers ok for unknown states)
                self.sessions.pop(key, None)
        log("info", f"authentication successful, saved credentials to {path}")
        st.auth.rescan()
        return name

    def fail(self, key: str, message: str) -> None:
        with self.state.lock:
            session = self.sessions.get(key)
            if session is not None:
                session["status"] = message
        log("error", f"authentication failed for state {key}: {message}")


class Usage:
    """`GET /usage`: request and token counts, recorded only while usage-statistics-enabled is on."""

    def __init__(self, state: State):
        self.state = state
        self.data = {"total_requests": 0, "success_count": 0, "failure_count": 0, "total_tokens": 0, "apis": {},
                     "requests_by_day": {}, "requests_by_hour": {}, "tokens_by_day": {}, "tokens_by_hour": {}}
        self.queue: list[dict] = []

    def record(self, endpoint: str, model: str, tokens: int, ok: bool, account: dict | None = None,
               split: tuple[int, int] | None = None, fail: tuple[int, str] | None = None) -> None:
        with self.state.lock:
            if not self.state.cfg["usage-statistics-enabled"]:
                return
            u = self.data
            now = datetime.now()
            # the mainline's usage queue (popped by one reader, each record kept `retention` seconds):
            # one record per upstream attempt, never for the registry's own 400 for an id no account serves
            if self.state.auth.serves(model):
                self._prune(time.time())
                if len(self.queue) < 10000:
                    self.queue.append((time.time(), queue_record(endpoint, model, tokens, ok, account, split, fail)))
            day, hour = now.strftime("%Y-%m-%d"), now.strftime("%H")
            u["total_requests"] += 1
            u["success_count" if ok else "failure_count"] += 1
            u["total_tokens"] += tokens
            api = u["apis"].setdefault(endpoint, {"total_requests": 0, "total_tokens": 0, "models": {}})
            api["total_requests"] += 1
            api["total_tokens"] += tokens
            m = api["models"].setdefault(model, {"total_requests": 0, "total_tokens": 0, "details": []})
            m["total_requests"] += 1
            m["total_tokens"] += tokens
            m["details"].append({"timestamp": rfc3339(utc_now()), "tokens": {"total_tokens": tokens}, "failed": not ok})
            for bucket, key, amount in (("requests_by_day", day, 1), ("requests_by_hour", hour, 1),
                                        ("tokens_by_day", day, tokens), ("tokens_by_hour", hour, tokens)):
                u[bucket][key] = u[bucket].get(key, 0) + amount

    def snapshot(self) -> dict:
        with self.state.lock:
            return copy.deepcopy(self.data)

    def _prune(self, now: float) -> None:
        """redisqueue/queue.go pruneLocked: records older than redis-usage-queue-retention-seconds
        (default 60, at most 3600) are dropped, read or not."""
        raw = self.state.cfg["raw"].get("redis-usage-queue-retention-seconds")
        keep = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else 60
        cutoff = now - min(keep, 3600)
        while self.queue and self.queue[0][0] < cutoff:
            self.queue.pop(0)

    def pop(self, count: int) -> list[dict]:
        with self.state.lock:
            self._prune(time.time())
            out, self.queue[:] = self.queue[:count], self.queue[count:]
            return [record for _, record in out]


EXECUTORS = {"codex": "CodexExecutor", "claude": "ClaudeExecutor"}


def queue_record(endpoint: str, model: str, tokens: int, ok: bool, account: dict | None,
                 split: tuple[int, int] | None, fail: tuple[int, str] | None) -> dict:
    """One usage-queue record as redisqueue/plugin.go marshals it (queuedUsageDetail): the serving
    account's auth_index and source, the flat token fields and the v2 token breakdown."""
    inp, out = split if split else (0, tokens)
    provider = account["type"] if account else "unknown"
    status, body = fail if fail else ((200, "") if ok else (500, ""))
    return {
        "timestamp": go_time(time.time()), "latency_ms": 0, "ttft_ms": 0,
        "source": (account["email"] or account["label"]) if account else "",
        "auth_index": account["index"] if account else "",
        "client_ip": "127.0.0.1", "x_forwarded_for": "", "user_agent": "",
        "tokens": {"input_tokens": inp, "output_tokens": out, "reasoning_tokens": 0, "cached_tokens": 0,
                   "cache_read_tokens": 0, "cache_read_tokens_present": True, "cache_creation_tokens": 0,
                   "total_tokens": inp + out},
        "failed": not ok, "generate": True, "fail": {"status_code": status, "body": body},
        "accounting_version": 2,
        "token_breakdown": {"schema_version": 2, "quality": "complete", "total_tokens": inp + out,
                            "input": {"total_tokens": inp, "uncached_tokens": inp, "cache_read_tokens": 0,
                                      "cache_write_tokens": 0},
                            "output": {"total_tokens": out, "non_reasoning_tokens": out, "reasoning_tokens": 0},
                            "unclassified_tokens": 0},
        "provider": provider, "executor_type": EXECUTORS.get(provider, "unknown"), "model": model, "alias": model,
        "endpoint": f"POST {endpoint}", "auth_type": "oauth" if account else "unknown", "api_key": "",
        "request_id": secrets.token_hex(4), "reasoning_effort": "", "service_tier": "",
    }


class Handler(HTTPSurface):
    """The HTTP surface above plus the management API."""

    def _management(self, method: str, sub: str, query: dict) -> None:
        if not self.state.mgmt_enabled:
            self._send(404, b"", "")  # (!) no management key: the routes are disabled, a bare 404
            return
        routes = {
            ("GET", "/get-auth-status"): self._m_auth_status,
            ("POST", "/oauth-callback"): self._m_oauth_callback,
            ("GET", "/auth-files"): self._m_auth_files,
            ("GET", "/auth-files/models"): self._m_auth_file_models,
            ("DELETE", "/auth-files"): self._m_delete_auth_file,
            ("PATCH", "/auth-files/status"): self._m_auth_file_status,
            ("GET", "/config"): self._m_config,
            ("GET", "/usage"): self._m_usage,
            ("POST", "/_double/complete"): self._m_double_complete,
            ("POST", "/api-call"): self._m_api_call,
        }
        if MAINLINE:
            routes[("DELETE", "/oauth-session")] = self._m_cancel_session
            routes[("GET", "/usage-queue")] = self._m_usage_queue
            routes[("POST", "/reset-quota")] = self._m_reset_quota
            if method == "GET" and sub.startswith("/model-definitions/"):
                routes[(method, sub)] = lambda q: self._m_model_definitions(sub.rsplit("/", 1)[-1])
        handler = routes.get((method, sub))
        if handler is None and method == "GET" and sub.lstrip("/") in AUTH_URL_ENDPOINTS:
            provider = AUTH_URL_ENDPOINTS[sub.lstrip("/")]
            handler = lambda q: self._m_auth_url(provider, q)  # noqa: E731
        if handler is None:
            self._not_found()
            return
        self._extra_headers = [("X-CPA-VERSION", VERSION), ("X-CPA-COMMIT", COMMIT), ("X-CPA-BUILD-DATE", BUILD_DATE)]
        if MAINLINE and sub == "/oauth-callback":  # the real mainline serves it without the management key
            handler(query)
        elif self._management_auth():
            handler(query)

    # -- the key check: 403 no key configured / remote disabled / banned, 401 missing / wrong -------

    def _management_auth(self) -> bool:
        st = self.state
        ip = self._client_ip()
        local = ip in ("127.0.0.1", "::1")
        with st.lock:
            allow_remote = st.cfg["remote-management"]["allow-remote"] or bool(st.env_secret)
            secret_hash = st.cfg["remote-management"]["secret-key"]
        env_secret = st.env_secret

        def fail() -> None:
            if local:
                return
            with st.lock:
                info = st.failed_attempts.setdefault(ip, {"count": 0, "blocked_until": 0.0})
                info["count"] += 1
                if info["count"] >= BAN_AFTER:
                    info["blocked_until"] = time.time() + BAN_SECONDS
                    info["count"] = 0

        if not local:
            with st.lock:
                info = st.failed_attempts.get(ip)
                if info and info["blocked_until"]:
                    remaining = info["blocked_until"] - time.time()
                    if remaining > 0:
                        mins, secs = divmod(int(round(remaining)), 60)
                        self._json(403, {"error": f"IP banned due to too many failed attempts. Try again in {mins}m{secs}s"})
                        return False
                    info["blocked_until"] = 0.0
                    info["count"] = 0
            if not allow_remote:
                self._json(403, {"error": "remote management disabled"})
                return False
        if not secret_hash and not env_secret:
            self._json(403, {"error": "remote management key not set"})
            return False
        provided = ""
        auth = self.headers.get("Authorization", "")
        if auth:
            parts = auth.split(" ", 1)
            provided = parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else auth
        if not provided:
            provided = self.headers.get("X-Management-Key", "")
        if not provided:
            fail()
            self._json(401, {"error": "missing management key"})
            return False
        if not (env_secret and hmac.compare_digest(provided.encode(), env_secret.encode())) and \
                not (secret_hash and verify_secret(secret_hash, provided)):
            fail()
            self._json(401, {"error": "invalid management key"})
            return False
        if not local:
            with st.lock:
                st.failed_attempts.pop(ip, None)
        return True

    # -- logins: start (redirect flows, device flows, kiro) ------------------------------------------

    def _m_auth_url(self, provider: str, query: dict) -> None:
        q = {k: v[0] for k, v in query.items() if v}
        if provider in CALLBACK_PORTS:
            self._start_redirect_login(provider, q)
        elif provider in DEVICE_PROVIDERS:
            self._start_device_login(provider)
        else:
            self._start_kiro_login(q)

    def _start_redirect_login(self, provider: str, q: dict) -> None:
        extra = {"project_id": q["project_id"]} if provider == "gemini" and q.get("project_id") else {}
        state = self.state.logins.start(provider, **extra)
        params = urllib.parse.urlencode({
            "client_id": "cliproxy-double",
            "code_challenge": secrets.token_urlsafe(32),
            "code_challenge_method": "S256",
            # the real v7.2.140: Claude's redirect is /callback, the others' /auth/callback
            "redirect_uri": f"http://localhost:{CALLBACK_PORTS[provider]}/{'callback' if provider == 'anthropic' else 'auth/callback'}",
            "response_type": "code",
            "scope": "openid email profile offline_access",
            "state": state,
        })
        if q.get("is_webui", "").lower() in ("true", "1"):
            log("warn", f"is_webui=true: the double does not listen on port {CALLBACK_PORTS[provider]}; use POST /oauth-callback")
        log("info", f"{provider} login started, state {state}")
        self._json(200, {"status": "ok", "url": f"{AUTHORIZE_URLS[provider]}?{params}", "state": state})

    def _start_device_login(self, provider: str) -> None:
        user_code = device_code()
        state = self.state.logins.start(provider, user_code=user_code)
        if provider == "github":  # Plus only
            uri = "https://github.com/login/device"
            log("info", f"github copilot device flow started, state {state}")
            self._json(200, {"status": "ok", "url": uri, "state": state, "user_code": user_code, "verification_uri": uri})
        elif provider == "qwen":  # Plus only
            self._json(200, {"status": "ok", "url": f"https://chat.qwen.ai/authorize?user_code={user_code}&client=qwen-code",
                             "state": state})
        elif provider == "kimi":
            url = f"https://www.kimi.com/code/authorize_device?user_code={user_code}"
            extra = {"flow": "device", "user_code": user_code, "expires_in": 900} if MAINLINE else {}
            self._json(200, {"status": "ok", "url": url, "state": state, **extra})
        else:  # xai, mainline only
            self._json(200, {"status": "ok", "url": f"https://accounts.x.ai/device?user_code={user_code}", "state": state,
                             "flow": "device", "user_code": user_code, "expires_in": 900})

    def _start_kiro_login(self, q: dict) -> None:
        """Plus only: answers just the state; the URL or code arrive through get-auth-status."""
        st = self.state
        method = q.get("method", "").strip().lower() or "aws"
        if method not in KIRO_METHODS:
            self._json(400, {"status": "error", "error": f"invalid method, must be one of: {', '.join(KIRO_METHODS)}"})
            return
        state = st.logins.start("kiro", method=method)
        if method in ("aws", "builder-id"):
            code = device_code()
            status = f"device_code|https://view.awsapps.com/start/#/device?user_code={code}|{code}"
        else:
            status = f"auth_url|https://prod.us-east-1.auth.desktop.kiro.dev/login?idp={method.capitalize()}&state={state}"
        with st.lock:
            st.logins.sessions[state]["status"] = status
        log("info", f"kiro login started (method {method}), state {state}")
        self._json(200, {"status": "ok", "state": state, "method": method})

    # -- logins: status, cancel (mainline) --------------------------------------------------------

    def _m_auth_status(self, query: dict) -> None:
        state = (query.get("state") or [""])[0].strip()
        if not state:
            self._json(200, {"status": "ok"})
            return
        if not valid_state(state):
            self._json(400, {"status": "error", "error": "invalid state"})
            return
        session = self.state.logins.get(state)
        if session is not None and "done" in session:
            if time.monotonic() - session["done"] <= OK_WINDOW:
                self._json(200, {"status": "ok"})
                return
            session = None
        if session is None:
            if MAINLINE:  # answers what it does not know with an error
                self._json(200, {"status": "error", "error": "unknown or expired state"})
            else:  # (!) Plus answers ok for an unknown or expired state
                self._json(200, {"status": "ok"})
            return
        status = session.get("status", "")
        if status.startswith("device_code|") and len(status.split("|", 2)) == 3:
            _, url, code = status.split("|", 2)
            self._json(200, {"status": "device_code", "verification_url": url, "user_code": code})
        elif status.startswith("auth_url|"):
            self._json(200, {"status": "auth_url", "url": status[len("auth_url|"):]})
        elif status:
            self._json(200, {"status": "error", "error": status})
        else:
            self._json(200, {"status": "wait"})

    def _m_cancel_session(self, query: dict) -> None:
        state = (query.get("state") or [""])[0].strip()
        logins = self.state.logins
        with self.state.lock:
            session = logins.sessions.get(state) if valid_state(state) else None
            if session is None or not logins.is_pending(session):
                self._json(200, {"status": "ok", "cancelled": False})  # the real v7.2.140's answer
                return
            logins.sessions.pop(state, None)
        log("info", f"login session {state} cancelled")
        self._json(200, {"status": "ok", "cancelled": True})

    # -- logins: the browser's redirect handed over ------------------------------------------------

    def _m_oauth_callback(self, query: dict) -> None:
        st = self.state
        body = self._json_body({"status": "error", "error": "invalid body"})
        if body is None:
            return
        provider = str(body.get("provider") or "").strip().lower()
        if provider not in CALLBACK_PORTS:
            self._json(400, {"status": "error", "error": "unsupported provider"})
            return
        state = str(body.get("state") or "").strip()
        code = str(body.get("code") or "").strip()
        err = str(body.get("error") or "").strip()
        email_addr = str(body.get("email") or "").strip()
        redirect = str(body.get("redirect_url") or "").strip()
        if redirect:
            try:
                parts = urllib.parse.urlsplit(redirect)
            except ValueError:
                self._json(400, {"status": "error", "error": "invalid redirect_url"})
                return
            rq = urllib.parse.parse_qs(parts.query)
            state = state or (rq.get("state") or [""])[0].strip()
            code = code or (rq.get("code") or [""])[0].strip()
            err = err or (rq.get("error") or rq.get("error_description") or [""])[0].strip()
            email_addr = email_addr or (rq.get("email") or [""])[0].strip()
        if not state:
            self._json(400, {"status": "error", "error": "state is required"})
            return
        if not valid_state(state):
            self._json(400, {"status": "error", "error": "invalid state"})
            return
        if not code and not err:
            self._json(400, {"status": "error", "error": "code or error is required"})
            return
        session = st.logins.get(state)
        if session is None:
            self._json(404, {"status": "error", "error": "unknown or expired state"})
            return
        if session["provider"] != provider:
            self._json(400, {"status": "error", "error": "provider does not match state"})
            return
        with st.lock:
            if not st.logins.is_pending(session) or session.get("callback_received"):
                self._json(409, {"status": "error", "error": session.get("status") or "oauth flow is not pending"})
                return
            session["callback_received"] = True
        # the real server hands the callback to the waiting login goroutine through this file
        tmp_path = os.path.join(st.auth_dir, f".oauth-{provider}-{state}.oauth")
        try:
            ensure_auth_dir(st.auth_dir)
            atomic_write(tmp_path, json.dumps({"code": code, "state": state, "error": err}).encode(), mode=0o600)
        except OSError as exc:
            log("error", f"failed to persist oauth callback: {exc}")
            self._json(500, {"status": "error", "error": "failed to persist oauth callback"})
            return
        threading.Thread(target=self._finish_callback, args=(st, state, err, email_addr, tmp_path), daemon=True).start()
        self._json(200, {"status": "ok"})

    @staticmethod
    def _finish_callback(st: State, state: str, err: str, email_addr: str, tmp_path: str) -> None:
        if st.callback_delay > 0:
            time.sleep(st.callback_delay)
        try:
            if err:
                st.logins.fail(state, f"Authentication failed: {err}")
            else:
                try:
                    st.logins.complete(state, email=email_addr)
                except KeyError:
                    pass
                except OSError as exc:
                    st.logins.fail(state, f"Failed to save authentication tokens: {exc}")
        finally:
            try:
                os.remove(tmp_path)
            except OSError:
                pass

    # -- auth-files -------------------------------------------------------------------------------

    def _m_auth_files(self, query: dict) -> None:
        st = self.state
        st.auth.rescan()
        files, now = [], time.time()
        with st.lock:
            for name in sorted(st.auth.accounts):
                a = st.auth.accounts[name]
                files.append({
                    "id": name,
                    "auth_index": a["index"],
                    "name": name,
                    "type": a["type"],
                    "provider": a["type"],
                    "label": a["label"],
                    "email": a["email"],
                    "disabled": a["disabled"],
                    "last_refresh": a["last_refresh"],
                    "path": a["path"],
                    **st.pool.entry(name, now),
                })
                if a["disabled"]:
                    files[-1]["status"] = "disabled"
        self._json(200, {"files": files})

    def _m_auth_file_models(self, query: dict) -> None:
        """What one account serves (by file name); an unknown name lists nothing, as the real one."""
        name = (query.get("name") or [""])[0]
        if not name:
            self._json(400, {"error": "name is required"})
            return
        self.state.auth.rescan()
        with self.state.lock:
            account = self.state.auth.accounts.get(name)
        models = self.state.auth.served_by(account) if account and not account["disabled"] else []
        self._json(200, {"models": [{"id": m["id"], "display_name": m.get("display_name", m["id"]),
                                     "owned_by": m["owned_by"]} for m in models]})

    @staticmethod
    def _valid_file_name(name: str) -> bool:
        return bool(name) and name.endswith(".json") and "/" not in name and "\\" not in name and not name.startswith(".")

    def _m_delete_auth_file(self, query: dict) -> None:
        st = self.state
        name = (query.get("name") or [""])[0].strip()
        if not self._valid_file_name(name):
            self._json(400, {"error": "invalid name"})
            return
        path = os.path.join(st.auth_dir, name)
        if not os.path.isfile(path):
            self._json(404, {"error": "auth file not found"})
            return
        try:
            os.remove(path)
        except OSError as exc:
            self._json(500, {"error": f"failed to remove file: {exc}"})
            return
        st.auth.rescan()
        self._json(200, {"status": "ok"})

    def _m_auth_file_status(self, query: dict) -> None:
        st = self.state
        body = self._json_body({"error": "invalid request body"})
        if body is None:
            return
        name = str(body.get("name") or "").strip()
        if not name:
            self._json(400, {"error": "name is required"})
            return
        if not isinstance(body.get("disabled"), bool):
            self._json(400, {"error": "disabled is required"})
            return
        if not self._valid_file_name(name):
            self._json(400, {"error": "invalid name"})
            return
        path = os.path.join(st.auth_dir, name)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            self._json(404, {"error": "auth file not found"})
            return
        except (OSError, ValueError) as exc:
            self._json(500, {"error": f"failed to read auth file: {exc}"})
            return
        data["disabled"] = body["disabled"]
        atomic_write(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), mode=0o600)
        st.auth.rescan()
        self._json(200, {"status": "ok", "disabled": body["disabled"]})

    # -- config, usage --------------------------------------------------------------------------

    def _m_config(self, query: dict) -> None:
        st = self.state
        with st.lock:
            cfg = st.cfg
            out = copy.deepcopy(cfg["raw"])
            for key in ("host", "port", "api-keys", "debug", "logging-to-file", "request-log", "usage-statistics-enabled",
                        "proxy-url", "request-retry"):
                out[key] = copy.deepcopy(cfg[key])
            out["auth-dir"] = st.auth_dir
            out["routing"] = {**(out.get("routing") if isinstance(out.get("routing"), dict) else {}), **cfg["routing"]}
            rm = out.get("remote-management") if isinstance(out.get("remote-management"), dict) else {}
            out["remote-management"] = {**rm, **cfg["remote-management"]}
        self._json(200, json.loads(json.dumps(out, default=str)))

    def _m_usage_queue(self, query: dict) -> None:
        """Pops up to `count` request records (one reader only), as the mainline's usage queue
        (management/usage.go: `count` defaults to 1; anything but a positive integer is a 400)."""
        raw = (query.get("count") or [""])[0].strip()
        try:
            count = int(raw) if raw else 1
        except ValueError:
            count = 0
        if count <= 0:
            self._json(400, {"error": "count must be a positive integer"})
            return
        self._json(200, self.state.usage.pop(count))

    def _m_reset_quota(self, query: dict) -> None:
        body = self._json_body({"error": "invalid body"})
        if body is None:
            return
        wanted = str(body.get("auth_index") or "")
        with self.state.lock:
            known = any(a["index"] == wanted for a in self.state.auth.accounts.values())
        if not known:
            self._json(404, {"error": "auth not found"})
            return
        self._json(200, {"status": "ok"})

    def _m_model_definitions(self, channel: str) -> None:
        channels = self.state.catalog.get()
        # the registry's codex channel is its widest plan's list (the models.json here keeps one per plan)
        models = channels.get(channel) if channel != "codex" else channels.get("codex-pro")
        if not isinstance(models, list):
            self._json(404, {"error": f"unknown channel {channel}"})
            return
        self._json(200, {"channel": channel, "models": models})

    def _m_usage(self, query: dict) -> None:
        usage = self.state.usage.snapshot()
        self._json(200, {"usage": usage, "failed_requests": usage["failure_count"]})

    # -- api-call: a request upstream with an account's own token (how quota is read) -------------

    def _m_api_call(self, query: dict) -> None:
        """As the binary: 400 for a bad body/method/url; the account by auth_index; `$TOKEN$` in a header
        value replaced by its access token (an unknown index leaves it as is; a known account without a
        token is 400 "auth token not found"); 502 "request failed" when the upstream cannot be reached;
        else 200 {status_code, header, body} whatever the upstream answered. This machine has no
        internet: the double plays the two quota upstreams itself (quota_upstream) and nothing else."""
        body = self._json_body({"error": "invalid body"})
        if body is None:
            return
        method = str(body.get("method") or "").strip().upper()
        url = str(body.get("url") or "").strip()
        if not method:
            return self._json(400, {"error": "missing method"})
        if not url:
            return self._json(400, {"error": "missing url"})
        parsed = urllib.parse.urlsplit(url)
        if not parsed.scheme or not parsed.netloc:
            return self._json(400, {"error": "invalid url"})
        if parsed.scheme not in ("http", "https"):
            return self._json(400, {"error": "only http and https schemes are allowed"})
        headers = body.get("header") if isinstance(body.get("header"), dict) else {}
        index = str(body.get("auth_index") or body.get("authIndex") or body.get("AuthIndex") or "").strip()
        st = self.state
        st.auth.rescan()
        with st.lock:
            account = next((a for a in st.auth.accounts.values() if index and a["index"] == index), None)
        sent = {}
        for key, value in headers.items():
            value = str(value)
            if "$TOKEN$" in value and account is not None:
                if not account["access_token"]:
                    return self._json(400, {"error": "auth token not found"})
                value = value.replace("$TOKEN$", account["access_token"])
            sent[str(key).lower()] = value
        answer = quota_upstream(method, parsed, sent, st)
        if answer is None:
            return self._json(502, {"error": "request failed"})
        status, upstream_body = answer
        self._json(200, {"status_code": status, "header": {"Content-Type": ["application/json"]}, "body": upstream_body})

    # -- test-only: finish a pending login as if the user approved (or refused) it ------------------

    def _m_double_complete(self, query: dict) -> None:
        logins = self.state.logins
        body = self._json_body({"status": "error", "error": "invalid body"})
        if body is None:
            return
        state = str(body.get("state") or "").strip()
        session = logins.get(state) if state else None
        if session is None:
            self._json(404, {"status": "error", "error": "unknown or expired state"})
            return
        if not logins.is_pending(session):
            self._json(409, {"status": "error", "error": session.get("status") or "oauth flow is not pending"})
            return
        if body.get("ok", True) is False:
            message = str(body.get("error") or "Authentication failed")
            logins.fail(state, message)
            self._json(200, {"status": "ok", "result": "error", "error": message})
            return
        try:
            name = logins.complete(state, email=str(body.get("email") or ""), username=str(body.get("username") or ""))
        except KeyError:
            self._json(404, {"status": "error", "error": "unknown or expired state"})
            return
        self._json(200, {"status": "ok", "result": "ok", "file": name})


# =============================================================================================
# Token stores for several instances (sheet: "Token stores for several instances")
# Not emulated: the double always keeps accounts in its local auth-dir, and login sessions in its
# own memory (a start call and its callback must reach the same instance, as with the real one).
# Nor is the sheet's "Codex CLI's own login file" section: that file is FlowGate's import source,
# read by FlowGate, never by the binary.
# =============================================================================================


# =============================================================================================
# Account files in auth-dir (sheet: "Account files in auth-dir"; mainline: hashed codex names)
# One JSON file per account, mode 0600; `disabled: true` files are skipped; `.oauth-*` files are
# the callbacks in flight. The enabled accounts' types decide which models /v1/models lists.
# =============================================================================================

class Catalog:
    """The model registry (sheet: "The model registry"): per channel, the ids its accounts serve.
    Read from a file like the binary's embedded models.json, and re-read when it changes (the real
    binary refreshes its copy every 3 h from a repository, so ids change without a release)."""

    def __init__(self, path: str):
        self.path, self._key, self.channels = path, None, {}

    def get(self) -> dict:
        try:
            st = os.stat(self.path)
        except OSError:
            return self.channels
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._key:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                self.channels = {k: v for k, v in data.items() if isinstance(v, list)}
            except (OSError, ValueError) as exc:
                log("warn", f"model catalog {self.path} unreadable, keeping the last one: {exc}")
            self._key = key
        return self.channels


def codex_client_models(served: list[dict]) -> list[dict] | None:
    """`GET /v1/models?client_version=` as the real binary builds it (internal/client/codex/models):
    every served id, a served id with a template as the template (display name from the registry),
    any other id as the gpt-5.5 template renamed, without upgrade, after the templates by name; all
    sorted by priority. Without its templates the real one answers `{"models": null}`, and so does this."""
    path = (os.environ.get("CLIPROXY_DOUBLE_CODEX_CATALOG")
            or os.path.join(os.path.dirname(os.path.abspath(__file__)), "codex_client_models.json"))
    try:
        with open(path, encoding="utf-8") as fh:
            templates = {m["slug"]: m for m in json.load(fh)["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    base = max(m["priority"] for m in templates.values())
    out, others = [], []
    for m in served:
        if m["id"] in templates:
            out.append(dict(templates[m["id"]]))
            continue
        entry = {**templates["gpt-5.5"], "slug": m["id"], "display_name": m["id"], "description": m["id"],
                 "service_tiers": [], "prefer_websockets": False}
        for key in ("apply_patch_tool_type", "upgrade", "availability_nux"):
            entry.pop(key, None)
        others.append(entry)
    for rank, entry in enumerate(sorted(others, key=lambda e: (e["display_name"].lower(), e["slug"])), 1):
        entry["priority"] = base + 100 * rank
    return sorted(out + others, key=lambda e: e["priority"])


def channel_of(account: dict) -> str | None:
    """The registry channel an account's models come from: codex by plan (unknown plan: pro, as the
    binary does), gemini only where a login for it exists (the Plus line)."""
    t = account["type"]
    if t == "codex":
        plan = account.get("plan") or "pro"
        return {"business": "codex-team", "go": "codex-team"}.get(plan, f"codex-{plan}")
    if t == "gemini":
        return None if MAINLINE else "gemini-cli"
    return t



def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_name_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", value) or "user"


def fake_jwt(claims: dict) -> str:
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.double-signature"


def build_account(provider: str, email: str, username: str, extra: dict) -> tuple[str, dict]:
    """(file name, content) of the account a finished login writes."""
    now = utc_now()
    exp = now + timedelta(days=10)
    token = secrets.token_hex(16)
    email = email or "user@example.com"
    username = username or "double-user"
    tokens = {"access_token": f"double-access-{token}", "refresh_token": f"double-refresh-{token}"}
    if provider == "codex":
        account_id = str(uuid.uuid4())
        prefix = f"codex-{hashlib.sha256(account_id.encode()).hexdigest()[:8]}-" if MAINLINE else "codex-"
        return f"{prefix}{safe_name_part(email)}.json", {
            "type": "codex",
            "id_token": fake_jwt({"email": email, "https://api.openai.com/auth": {
                "chatgpt_account_id": account_id, "chatgpt_plan_type": _env("CLIPROXY_DOUBLE_CODEX_PLAN", "plus")}}),
            **tokens,
            "account_id": account_id,
            "email": email,
            "last_refresh": rfc3339(now),
            "expired": rfc3339(exp),
        }
    if provider == "anthropic":
        return f"claude-{safe_name_part(email)}.json", {
            "type": "claude", **tokens, "email": email, "last_refresh": rfc3339(now), "expired": rfc3339(exp)}
    if provider == "github":
        return f"github-{safe_name_part(username)}.json", {
            "type": "github-copilot",
            "access_token": f"gho_double{token}",
            "token_type": "bearer",
            "scope": "read:user",
            "username": username,
        }
    if provider == "gemini":
        project = extra.get("project_id") or "double-project"
        return f"gemini-{safe_name_part(email)}-{safe_name_part(project)}.json", {
            "type": "gemini",
            "email": email,
            "project_id": project,
            "auto": True,
            "checked": True,
            "token": {**tokens, "token_type": "Bearer", "expiry": rfc3339(exp)},
        }
    if provider == "antigravity":
        return f"antigravity-{safe_name_part(email)}.json", {
            "type": "antigravity", "email": email, **tokens, "expired": rfc3339(exp),
            "timestamp": int(now.timestamp() * 1000)}
    if provider == "iflow":
        return f"iflow-{safe_name_part(email)}.json", {
            "type": "iflow", "email": email, "api_key": f"double-key-{token}", **tokens,
            "last_refresh": rfc3339(now), "expired": rfc3339(exp)}
    if provider == "qwen":
        return f"qwen-{safe_name_part(email)}.json", {
            "type": "qwen", "email": email, **tokens, "resource_url": "portal.qwen.ai",
            "last_refresh": rfc3339(now), "expired": rfc3339(exp)}
    if provider == "kimi":
        return f"kimi-{safe_name_part(username)}.json", {
            "type": "kimi", "username": username, **tokens, "expired": rfc3339(exp)}
    if provider == "xai":
        return f"xai-{safe_name_part(email)}.json", {"type": "xai", "email": email, **tokens, "expired": rfc3339(exp)}
    if provider == "kiro":
        method = extra.get("method") or "aws"
        return f"kiro-{safe_name_part(method)}-{safe_name_part(username)}.json", {
            "type": "kiro", "auth_method": method, **tokens, "expires_at": rfc3339(exp)}
    raise ValueError(f"unsupported provider {provider}")


def codex_plan(data: dict) -> str:
    """The plan claim of a codex account's id_token (what picks its models), lower-case; '' if none."""
    token = data.get("id_token")
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        plan = claims["https://api.openai.com/auth"]["chatgpt_plan_type"]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return ""
    return plan.strip().lower() if isinstance(plan, str) else ""


def infer_type(name: str, data: dict) -> str:
    """The account's type: its `type` field, else its file name's prefix."""
    t = data.get("type")
    t = t.strip().lower() if isinstance(t, str) and t.strip() else name.split("-", 1)[0].lower()
    return {"anthropic": "claude", "github": "github-copilot", "copilot": "github-copilot"}.get(t, t)


def auth_index(path: str, raw_type: str) -> str:
    """The binary's stable index of an account file (sdk/cliproxy/auth/types.go indexSeed): the first
    8 bytes of sha256("<type>:<absolute path>"), hex; the type as the file writes it, lower-case."""
    return hashlib.sha256(f"{raw_type.strip().lower()}:{os.path.abspath(path)}".encode()).hexdigest()[:16]


def access_token(data: dict) -> str:
    token = data.get("access_token") or data.get("accessToken") or data.get("token")
    if isinstance(token, dict):
        token = token.get("access_token") or token.get("accessToken")
    return token.strip() if isinstance(token, str) else ""


# The quota upstreams, played by the double with values of its own (tests compare against these).
CODEX_USAGE_URL = ("chatgpt.com", "/backend-api/wham/usage")
CLAUDE_USAGE_URL = ("api.anthropic.com", "/api/oauth/usage")
CODEX_WINDOWS = {"primary_window": (37.0, 18000, 7200), "secondary_window": (12.0, 604800, 345600)}  # used %, window s, reset in s
CLAUDE_WINDOWS = {"five_hour": (64.0, 3 * 3600), "seven_day": (21.0, 4 * 86400), "seven_day_opus": (5.0, 4 * 86400),
                  "seven_day_sonnet": None}  # utilization %, resets in s


def quota_upstream(method: str, url, headers: dict, state: State) -> tuple[int, str] | None:
    """(status, body) as chatgpt.com / api.anthropic.com would answer, for the account whose token the
    request carries; None for any other host (no network). An account file's `double_upstream`
    {"status_code", "body"} replaces the answer (test knob: failures, hostile bodies)."""
    where = (url.hostname or "", url.path.rstrip("/"))
    if where not in (CODEX_USAGE_URL, CLAUDE_USAGE_URL):
        return None
    bearer = headers.get("authorization", "")
    with state.lock:
        account = next((a for a in state.auth.accounts.values()
                        if a["access_token"] and bearer == f"Bearer {a['access_token']}"), None)
    now = int(time.time())
    if account is None or method != "GET":
        return 401, json.dumps({"error": {"message": "invalid or missing bearer token", "type": "unauthorized"}})
    if account["upstream"] is not None:
        override = account["upstream"]
        return int(override.get("status_code") or 200), str(override.get("body") or "")
    if where == CODEX_USAGE_URL:
        if account["type"] != "codex" or headers.get("chatgpt-account-id") != account["account_id"]:
            return 401, json.dumps({"detail": "Unauthorized"})
        windows = {name: {"used_percent": used, "limit_window_seconds": window, "reset_after_seconds": after,
                          "reset_at": now + after} for name, (used, window, after) in CODEX_WINDOWS.items()}
        if QUOTA_STEP > 0:  # live windows, filled by the requests this account served
            for name, (used, reset) in state.pool.windows(account["name"], "codex", time.time()).items():
                windows[name].update(used_percent=round(used, 1), reset_after_seconds=max(0, int(reset) - now),
                                     reset_at=int(reset))
        full = any(w["used_percent"] >= 100 for w in windows.values())
        return 200, json.dumps({"plan_type": account.get("plan") or "plus",
                                "rate_limit": {"allowed": not full, "limit_reached": full, **windows},
                                "credits": {"has_credits": False, "unlimited": False, "balance": "0"}})
    if account["type"] != "claude" or "oauth-2025-04-20" not in headers.get("anthropic-beta", ""):
        return 401, json.dumps({"type": "error", "error": {"type": "authentication_error",
                                                           "message": "OAuth authentication is currently not supported."}})
    out = {name: None if spec is None else {"utilization": spec[0], "resets_at": rfc3339(utc_now() + timedelta(seconds=spec[1]))}
           for name, spec in CLAUDE_WINDOWS.items()}
    if QUOTA_STEP > 0:  # live windows, filled by the requests this account served
        for name, (used, reset) in state.pool.windows(account["name"], "claude", time.time()).items():
            out[name] = {"utilization": round(used, 1), "resets_at": rfc3339(datetime.fromtimestamp(reset, timezone.utc))}
    return 200, json.dumps(out)


# =============================================================================================
# Accounts in rotation (mainline: sdk/cliproxy/auth scheduler.go, conductor_execution.go,
# conductor_cooldown.go MarkResult; executors' 429 handling). Test knobs: QUOTA_STEP, QUOTA_RESET.
# =============================================================================================

QUOTA_STEP = _env_float("CLIPROXY_DOUBLE_QUOTA_STEP", 0.0)  # percent a served request adds to each window
QUOTA_RESET = _env_float("CLIPROXY_DOUBLE_QUOTA_RESET", 30.0)  # seconds from a window's first request to 0 %
RECENT_BUCKET_SECONDS, RECENT_BUCKETS = 600, 20  # types.go: recent_requests, 20 buckets of 10 minutes
CLAUDE_RESET_GRACE = (1.0, 30.0)  # helps/claude_ratelimit.go: a random grace added to a rejected window's reset


def go_time(epoch: float) -> str:
    """A time as Go's encoding/json writes a time.Time (RFC 3339 with nanoseconds, here in UTC)."""
    dt = datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


class Window:
    """One quota window of one account: 0 % until a served request opens it, QUOTA_STEP more per
    request, back to 0 % QUOTA_RESET seconds after the request that opened it."""

    def __init__(self, step: float | None = None, reset: float | None = None):
        self.step = QUOTA_STEP if step is None else step
        self.reset = QUOTA_RESET if reset is None else reset
        self.opened: float | None = None
        self.used = 0.0

    def live(self, now: float) -> tuple[float, float]:
        """(used percent, reset epoch); an unopened window would reset `reset` seconds after a request now."""
        if self.opened is not None and now >= self.opened + self.reset:
            self.opened, self.used = None, 0.0
        return min(self.used, 100.0), (self.opened if self.opened is not None else now) + self.reset

    def count(self, now: float) -> None:
        self.live(now)
        if self.opened is None:
            self.opened = now
        self.used += self.step


class Pool:
    """The runtime side of the accounts, kept by file name (the auth's ID): counters, the per-model
    and credential-wide cooldowns the real Manager keeps after a failed attempt, the round-robin
    cursors, and each account's live quota windows (QUOTA_STEP > 0; with 0 the quota answers keep
    CODEX_WINDOWS / CLAUDE_WINDOWS and no request is refused)."""

    def __init__(self, state: "State"):
        self.state = state
        self.runtime: dict[str, dict] = {}
        self.cursors: dict[str, int] = {}

    def rt(self, name: str) -> dict:
        if name not in self.runtime:
            self.runtime[name] = {"success": 0, "failed": 0, "recent": {}, "models": {}, "status": "active",
                                  "status_message": "", "unavailable": False, "next_retry_after": None,
                                  "credential_until": None, "windows": collections.defaultdict(Window)}
        return self.runtime[name]

    # -- quota windows ---------------------------------------------------------------------------

    def windows(self, name: str, kind: str, now: float) -> dict[str, tuple[float, float]]:
        names = ("primary_window", "secondary_window") if kind == "codex" else ("five_hour", "seven_day", "seven_day_opus")
        with self.state.lock:
            return {w: self.rt(name)["windows"][w].live(now) for w in names}

    def exhausted(self, name: str, kind: str, now: float) -> float | None:
        """The reset epoch of the account's first full window, None while it has room."""
        if QUOTA_STEP <= 0:
            return None
        full = [reset for used, reset in self.windows(name, kind, now).values() if used >= 100.0]
        return min(full) if full else None

    # -- choosing an account ---------------------------------------------------------------------

    def _blocked(self, r: dict, model: str, now: float) -> tuple[bool, bool, float | None]:
        """(blocked, cooling down on quota, until) as selector.go isAuthBlockedForModel."""
        if r["credential_until"] and r["credential_until"] > now:
            return True, True, r["credential_until"]
        ms = r["models"].get(model)
        if not ms or not ms["unavailable"]:
            return False, False, None
        if ms["next_retry_after"] and ms["next_retry_after"] > now:
            return True, ms["quota"], ms["next_retry_after"]
        return False, False, None  # a past retry time: available again

    def pick(self, model: str, candidates: list[dict], tried: set[str], now: float):
        """The next account for `model` (scheduler.go pickRoundRobin: the ready ones sorted by ID,
        from the cursor on, skipping those this request already tried; fill-first: the first one).
        Returns an account, or (reset epoch or None) when none is ready."""
        with self.state.lock:
            ready, cooling = [], []
            for a in sorted(candidates, key=lambda a: a["name"]):
                blocked, quota, until = self._blocked(self.rt(a["name"]), model, now)
                if not blocked:
                    ready.append(a)
                elif quota and until:
                    cooling.append(until)
            if ready:
                key = f"{ready[0]['type']}:{model}"
                start = 0 if self.state.cfg["routing"]["strategy"] == "fill-first" else self.cursors.get(key, 0) % len(ready)
                for offset in range(len(ready)):
                    index = (start + offset) % len(ready)
                    if ready[index]["name"] not in tried:
                        self.cursors[key] = index + 1
                        return ready[index]
                return None
            if candidates and len(cooling) == len(candidates):
                return min(cooling)  # every credential cooling down: selector.go modelCooldownError
            return None

    # -- results (conductor_cooldown.go MarkResult) ----------------------------------------------

    def _recent(self, r: dict, now: float, ok: bool) -> None:
        bucket = int(now) // RECENT_BUCKET_SECONDS
        counts = r["recent"].setdefault(bucket, [0, 0])
        counts[0 if ok else 1] += 1
        for old in [b for b in r["recent"] if b <= bucket - RECENT_BUCKETS]:
            del r["recent"][old]

    def _aggregate(self, r: dict, now: float) -> None:
        """updateAggregatedAvailability: unavailable when every model state known is cooling down."""
        if r["credential_until"] and r["credential_until"] > now:
            r["unavailable"] = True
            return
        states = list(r["models"].values())
        if not states:
            r["unavailable"], r["next_retry_after"] = False, None
            return
        waits = [s["next_retry_after"] for s in states if s["unavailable"] and s["next_retry_after"] and s["next_retry_after"] > now]
        all_out = len(waits) == len(states)
        r["unavailable"] = all_out
        r["next_retry_after"] = min(waits) if all_out else None

    def served(self, account: dict, model: str, now: float, metered: bool = True) -> None:
        with self.state.lock:
            r = self.rt(account["name"])
            r["success"] += 1
            self._recent(r, now, True)
            for window in self.windows(account["name"], account["type"], now) if metered else ():
                r["windows"][window].count(now)
            if r["credential_until"] and r["credential_until"] > now:
                return  # an active credential-wide cooldown is kept
            r["models"][model] = {"unavailable": False, "next_retry_after": None, "quota": False, "message": ""}
            self._aggregate(r, now)
            if not any(s["unavailable"] and s["next_retry_after"] and s["next_retry_after"] > now for s in r["models"].values()):
                r["status"], r["status_message"] = "active", ""

    def refused(self, account: dict, model: str, message: str, until: float, credential: bool, now: float) -> None:
        """A 429 on a used-up subscription: the model cools down until the provider's reset; a
        credential-scoped refusal (claude's unified 5h/7d rejection) cools every model of the account."""
        with self.state.lock:
            r = self.rt(account["name"])
            r["failed"] += 1
            self._recent(r, now, False)
            r["models"][model] = {"unavailable": True, "next_retry_after": until, "quota": True, "message": message}
            if credential:
                for state in r["models"].values():
                    state.update(unavailable=True, quota=True, next_retry_after=max(state["next_retry_after"] or 0, until))
                r["credential_until"] = max(r["credential_until"] or 0, until)
                r["next_retry_after"] = r["credential_until"]
            r["status"], r["status_message"] = "error", message
            self._aggregate(r, now)

    def models_registered_again(self) -> None:
        """An account file added or changed: the real binary registers every account's models again
        and resets their model states (service_auth.go handleAuthUpdates -> syncPluginRuntime ->
        service_plugins.go registerModelsForAuthBatch over all auths -> conductor_selection.go
        ReconcileRegistryModelStates: "supported models are reset to a clean state"): model cooldowns end at once and the status is active again; a claude credential-wide
        cooldown stays (its account stays unavailable until the reset)."""
        now = time.time()
        with self.state.lock:
            for r in self.runtime.values():
                r["models"] = {}
                r["status"], r["status_message"] = "active", ""
                if not (r["credential_until"] and r["credential_until"] > now):
                    r["unavailable"], r["next_retry_after"] = False, None

    def entry(self, name: str, now: float) -> dict:
        """The runtime fields of an auth-files entry (auth_files.go buildAuthFileEntryLocked)."""
        with self.state.lock:
            r = self.rt(name)
            current = int(now) // RECENT_BUCKET_SECONDS
            recent = []
            for bucket in range(current - RECENT_BUCKETS + 1, current + 1):
                start = datetime.fromtimestamp(bucket * RECENT_BUCKET_SECONDS).astimezone()
                end = start + timedelta(seconds=RECENT_BUCKET_SECONDS)
                ok, failed = r["recent"].get(bucket, (0, 0))
                recent.append({"time": f"{start:%H:%M}-{end:%H:%M}", "success": ok, "failed": failed})
            out = {"status": r["status"], "status_message": r["status_message"], "unavailable": r["unavailable"],
                   "success": r["success"], "failed": r["failed"], "recent_requests": recent}
            if r["next_retry_after"]:
                out["next_retry_after"] = go_time(r["next_retry_after"])
            return out


def upstream_refusal(account: dict, reset_at: float, now: float) -> tuple[dict, list[tuple[str, str]], float, bool]:
    """(body, headers, cooldown until, credential-scoped) of a used-up subscription's 429, as each
    provider sends it, and the cooldown the binary derives from it: codex `usage_limit_reached`
    (codex_executor_terminal.go parseCodexRetryAfter: until resets_at), model-scoped; claude
    `rate_limit_error` with the unified-limit headers (helps/claude_ratelimit.go: the rejected
    window's reset plus a 1-30 s random grace), credential-scoped."""
    reset_at = math.ceil(reset_at)
    if account["type"] == "codex":
        body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                          "plan_type": account.get("plan") or "plus", "resets_at": reset_at,
                          "eligible_promo": None, "resets_in_seconds": max(1, int(reset_at - now))}}
        until = reset_at if reset_at > now else now + body["error"]["resets_in_seconds"]
        return body, [], float(until), False
    body = {"type": "error", "error": {"type": "rate_limit_error",
                                       "message": "This request would exceed your account's rate limit. Please try again later."}}
    headers = [("anthropic-ratelimit-unified-status", "rejected"), ("anthropic-ratelimit-unified-5h-status", "rejected"),
               ("anthropic-ratelimit-unified-5h-reset", str(reset_at))]
    return body, headers, reset_at + random.uniform(*CLAUDE_RESET_GRACE), True


def cooldown_error(model: str, provider: str, until: float, now: float) -> tuple[dict, list[tuple[str, str]]]:
    """selector.go modelCooldownError: every credential for the model is cooling down."""
    wait = max(0.0, until - now)
    seconds = math.ceil(wait)
    shown = max(1, round(wait)) if wait > 0 else 0
    body = {"error": {"code": "model_cooldown",
                      "message": f"All credentials for model {model} are cooling down via provider {provider}",
                      "model": model, "reset_time": go_duration(shown), "reset_seconds": seconds, "provider": provider}}
    return body, [("Retry-After", str(seconds))]


def go_duration(seconds: int) -> str:
    """time.Duration.String() for whole seconds: 0s, 45s, 1m5s, 1h0m0s."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


class AuthDir:
    """The accounts in auth-dir, rescanned on every watcher tick (a file is re-read when its
    mtime, size or inode changes), and the models they serve."""

    def __init__(self, state: State):
        self.state = state
        self.accounts: dict[str, dict] = {}
        self._cache: dict[str, tuple] = {}

    def forget(self) -> None:  # the auth-dir changed
        self.accounts = {}
        self._cache = {}

    def rescan(self) -> None:
        with self.state.lock:
            try:
                entries = list(os.scandir(self.state.auth_dir))
            except OSError:
                entries = []
            found: dict[str, dict] = {}
            for entry in entries:
                name = entry.name
                if not name.endswith(".json") or name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                key = (st.st_mtime_ns, st.st_size, st.st_ino)
                cached = self._cache.get(name)
                if cached and cached[0] == key:
                    account = cached[1]
                else:
                    account = self._load(entry.path, name)
                    self._cache[name] = (key, account)
                    if account is not None:
                        verb = "updated" if name in self.accounts else "added"
                        log("info", f"auth file {verb}: {name} (type {account['type']}, "
                                    f"{'disabled' if account['disabled'] else 'enabled'})")
                        self.state.pool.models_registered_again()
                if account is not None:
                    found[name] = account
            for name in set(self.accounts) - set(found):
                log("info", f"auth file removed: {name}")
            for name in set(self._cache) - {e.name for e in entries}:
                self._cache.pop(name, None)
            self.accounts = found

    @staticmethod
    def _load(path: str, name: str) -> dict | None:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            log("warn", f"skipping auth file {name}: {exc}")
            return None
        if not isinstance(data, dict):
            log("warn", f"skipping auth file {name}: not a JSON object")
            return None
        email = data.get("email") if isinstance(data.get("email"), str) else ""
        username = data.get("username") if isinstance(data.get("username"), str) else ""
        return {
            "name": name,
            "path": path,
            "index": auth_index(path, data["type"] if isinstance(data.get("type"), str) and data["type"].strip()
                                else infer_type(name, data)),
            "type": infer_type(name, data),
            "email": email,
            "label": email or username or name[:-5],
            "disabled": data.get("disabled") is True,
            "last_refresh": data.get("last_refresh") or "",
            "plan": codex_plan(data),
            "access_token": access_token(data),
            "account_id": data.get("account_id") if isinstance(data.get("account_id"), str) else "",
            "upstream": data.get("double_upstream") if isinstance(data.get("double_upstream"), dict) else None,
        }

    def served_by(self, account: dict) -> list[dict]:
        return self.state.catalog.get().get(channel_of(account) or "", [])

    def models(self) -> list[dict]:
        """(!) Only the models of enabled accounts are listed: none without an account."""
        with self.state.lock:
            out: dict[str, dict] = {}
            for account in sorted(self.accounts.values(), key=lambda a: a["name"]):
                if account["disabled"]:
                    continue
                for m in self.served_by(account):
                    out.setdefault(m["id"], {"id": m["id"], "object": "model", "created": m.get("created", 0),
                                             "owned_by": m["owned_by"]})
            return list(out.values())

    def serves(self, model: str) -> bool:
        return any(m["id"] == model for m in self.models())


if __name__ == "__main__":
    sys.exit(main())
