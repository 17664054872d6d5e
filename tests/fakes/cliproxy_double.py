#!/usr/bin/env python3
"""Test double of the CLIProxyAPIPlus binary (`cli-proxy-api-plus`).

The real binary cannot be downloaded on the test machines, so tests package this script as the
executable inside a fake release archive (with a `#!<python>` shebang prepended) or run it directly:

    python tests/fakes/cliproxy_double.py -config path/to/config.yaml

Standalone on purpose: standard library + PyYAML only, no imports from `tasks` or `tests`.
It follows /work/shared/reference/cliproxyapiplus.md (v6.8.16-0 Plus behaviour), including the
unfriendly parts FlowGate must cope with:

* first stdout line is the version banner; there is no `-version` flag (unknown flags -> exit 2);
* config load errors and bind errors are logged (`failed to load config: ...`,
  `failed to start HTTP server: ...`) and the process exits with status **0**;
  "API server started successfully" is printed before the bind is attempted;
* a plaintext `remote-management.secret-key` is replaced in the config file by a bcrypt-style hash
  (targeted line edit, comments kept, file replaced atomically: new inode, new mtime);
* the config file and the auth-dir are polled (~0.3 s) and hot-reloaded; host/port need a restart;
* `GET /` is the only readiness probe (no `/healthz`); an empty `api-keys` list disables client auth;
* with no management key configured the management routes answer a bare 404 (as the real server:
  the routes are disabled); an unknown `state` on `/get-auth-status` answers `{"status":"ok"}`.

Environment variables understood by the double (all optional):

    CLIPROXY_DOUBLE_VERSION        version in the banner and X-CPA-VERSION (default 6.8.16-0-plus)
    CLIPROXY_DOUBLE_COMMIT         commit in the banner / X-CPA-COMMIT (default "double")
    CLIPROXY_DOUBLE_BUILD_DATE     build date (default 2026-01-01T00:00:00Z)
    CLIPROXY_DOUBLE_LATEST_VERSION answer of GET /v0/management/latest-version (default v6.8.16-0)
    CLIPROXY_DOUBLE_MODELS         comma-separated model ids always served (no account needed)
    CLIPROXY_DOUBLE_START_DELAY    seconds to wait after the banner before binding (float)
    CLIPROXY_DOUBLE_EXIT_AT_START  exit immediately after the banner with this status
    CLIPROXY_DOUBLE_STREAM_DELAY   seconds between SSE chunks (default 0)
    CLIPROXY_DOUBLE_CALLBACK_DELAY seconds between POST /oauth-callback and the account file
                                   appearing (default 0.05); status polls answer "wait" meanwhile
    CLIPROXY_DOUBLE_SESSION_TTL    login session lifetime in seconds (default 600, as the real one)
    CLIPROXY_DOUBLE_POLL_INTERVAL  config/auth-dir poll period in seconds (default 0.3)
    CLIPROXY_DOUBLE_LOCAL_PASSWORD emulates the TUI "local management password" (localhost only)
    CLIPROXY_DOUBLE_TRUST_FORWARDED "0" to ignore X-Forwarded-For/X-Real-IP (default: trusted, as
                                   gin does by default, so tests can fake a remote client)
    MANAGEMENT_PASSWORD            as the real binary: enables management, forces allow-remote

Test-only HTTP endpoint (not in the real binary; goes through the normal management auth):

    POST /v0/management/_double/complete
        {"state": "...", "ok": true|false, "error": "...", "email": "...", "username": "..."}
        Finishes a pending login (any provider, meant for device flows: github, qwen, kimi, kiro):
        ok=true writes the account file into auth-dir (mode 0600) and the session is completed
        (the next /get-auth-status says ok); ok=false marks it failed with `error`.

Double-only conveniences on the real endpoints: POST /oauth-callback takes an optional "email"
(body, or `email=` in redirect_url's query) for the account written; a callback whose code is
"bad-code" fails the token exchange. Chat replies are `double(<model>): <last user text>`, token
usage counts words, and API responses carry `X-Double-Account: <account file used>`. A model id
starting with `double-fail` answers 500 on every API route (an upstream failing, for fallbacks).
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import hashlib
import hmac
import ipaddress
import json
import os
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


def _edition() -> str:
    """The executable's name decides, as in the releases: `cli-proxy-api` is the mainline (v7),
    `cli-proxy-api-plus` (or this script run directly) the Plus line. CLIPROXY_DOUBLE_EDITION overrides."""
    forced = _env("CLIPROXY_DOUBLE_EDITION").lower()
    if forced in ("mainline", "plus"):
        return forced
    exe = os.path.basename(sys.argv[0] if sys.argv else "")
    return "mainline" if exe.removesuffix(".exe") == "cli-proxy-api" else "plus"


EDITION = _edition()
MAINLINE = EDITION == "mainline"
VERSION = _env("CLIPROXY_DOUBLE_VERSION", "7.2.140" if MAINLINE else "6.8.16-0-plus")
COMMIT = _env("CLIPROXY_DOUBLE_COMMIT", "double")
BUILD_DATE = _env("CLIPROXY_DOUBLE_BUILD_DATE", "2026-01-01T00:00:00Z")

MODEL_CREATED = 1735689600  # fixed, so /v1/models is deterministic

# Built-in model catalogue per account type (the `type` field of an auth-dir account file).
CATALOGUE: dict[str, list[tuple[str, str]]] = {
    "codex": [("gpt-5-codex", "openai"), ("gpt-5", "openai")],
    "claude": [("claude-sonnet-4-5", "anthropic"), ("claude-haiku-4-5", "anthropic")],
    "github-copilot": [("gpt-4.1", "github-copilot"), ("claude-sonnet-4", "github-copilot")],
    "gemini": [("gemini-2.5-pro", "google"), ("gemini-2.5-flash", "google")],
    "antigravity": [("gemini-3-pro-preview", "antigravity")],
    "qwen": [("qwen3-coder-plus", "qwen")],
    "kimi": [("kimi-k2", "moonshot")],
    "iflow": [("glm-4.6", "iflow")],
    "kiro": [("kiro-claude-sonnet-4-5", "aws")],
}

# ---------------------------------------------------------------------------------------------
# logging (stdout, flushed: the parent reads it as the server log)
# ---------------------------------------------------------------------------------------------

_log_lock = threading.Lock()


def log(level: str, msg: str) -> None:
    ts = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    line = f"[{ts}] [{level:<5}] {msg}\n"
    with _log_lock:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# command line (Go `flag` package semantics)
# ---------------------------------------------------------------------------------------------

BOOL_FLAGS = {
    "login": "Login Google Account",
    "codex-login": "Login to Codex using OAuth",
    "claude-login": "Login to Claude using OAuth",
    "qwen-login": "Login to Qwen using OAuth",
    "iflow-login": "Login to iFlow using OAuth",
    "iflow-cookie": "Login to iFlow using Cookie",
    "no-browser": "Don't open browser automatically for OAuth",
    "incognito": "Open browser in incognito/private mode for OAuth",
    "no-incognito": "Force disable incognito mode",
    "antigravity-login": "Login to Antigravity using OAuth",
    "kimi-login": "Login to Kimi using OAuth",
    "kiro-login": "Login to Kiro using Google OAuth",
    "kiro-google-login": "Login to Kiro using Google OAuth",
    "kiro-aws-login": "Login to Kiro using AWS Builder ID (device code flow)",
    "kiro-aws-authcode": "Login to Kiro using AWS Builder ID (authorization code flow)",
    "kiro-import": "Import Kiro token from Kiro IDE",
    "github-copilot-login": "Login to GitHub Copilot using device flow",
}
VALUE_FLAGS = {
    "config": ("string", "Configure File Path"),
    "project_id": ("string", "Project ID (Gemini only, not required)"),
    "vertex-import": ("string", "Import Vertex service account key JSON file"),
    "password": ("string", ""),
    "oauth-callback-port": ("int", "Override OAuth callback port"),
}
if MAINLINE:  # v7 has fewer built-in logins; a Plus-only flag (-github-copilot-login) exits 2
    BOOL_FLAGS = {
        "codex-login": "Login to Codex using OAuth",
        "codex-device-login": "Login to Codex using the device flow",
        "claude-login": "Login to Claude using OAuth",
        "antigravity-login": "Login to Antigravity using OAuth",
        "kimi-login": "Login to Kimi using the device flow",
        "xai-login": "Login to xAI using the device flow",
        "no-browser": "Don't open browser automatically for OAuth",
    }
    VALUE_FLAGS = {k: v for k, v in VALUE_FLAGS.items() if k in ("config", "password", "oauth-callback-port")}
LOGIN_FLAGS = set(BOOL_FLAGS) - {"no-browser", "incognito", "no-incognito"}


def _usage(prog: str) -> str:
    lines = [f"Usage of {prog}:"]
    for name in sorted(set(BOOL_FLAGS) | set(VALUE_FLAGS)):
        if name == "password":
            continue
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
        if len(arg) < 2 or not arg.startswith("-"):
            break  # first non-flag argument stops parsing, like Go
        if arg == "--":
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name.startswith("-") or name.startswith("="):
            _flag_fail(prog, f"bad flag syntax: {arg}")
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("h", "help"):
            sys.stderr.write(_usage(prog))
            sys.exit(0)
        if name in BOOL_FLAGS:
            if value is None:
                values[name] = True
            elif value.lower() in ("1", "t", "true"):
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


# ---------------------------------------------------------------------------------------------
# management key hashing (bcrypt when available, otherwise a bcrypt-looking stand-in)
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


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


_SECRET_LINE = re.compile(
    r"^(?P<indent>[ \t]+)secret-key[ \t]*:[ \t]*"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^#]*?)"
    r"(?P<suffix>[ \t]+#.*)?[ \t]*$"
)


def replace_secret_in_text(text: str, new_value: str) -> str | None:
    """Targeted edit of `remote-management: / secret-key:` keeping every other byte."""
    lines = text.splitlines(keepends=True)
    in_block = False
    for idx, line in enumerate(lines):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if not in_block:
            if re.match(r"^remote-management[ \t]*:[ \t]*(#.*)?$", body):
                in_block = True
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if not body[0].isspace():
            in_block = False
            if re.match(r"^remote-management[ \t]*:[ \t]*(#.*)?$", body):
                in_block = True
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
        atomic_write(config_path, new_text.encode("utf-8"))
    except OSError as exc:
        log("warn", f"failed to persist hashed management key: {exc}")
        return False
    return True


def resolve_auth_dir(value: str) -> str:
    value = value or "~/.cli-proxy-api"
    return os.path.abspath(os.path.expanduser(value))


def ensure_auth_dir(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


# ---------------------------------------------------------------------------------------------
# text helpers for the fake model replies
# ---------------------------------------------------------------------------------------------


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
    pieces = re.findall(r"\S+\s*|\s+", text)
    return pieces or [""]


def safe_name_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", value) or "user"


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


# ---------------------------------------------------------------------------------------------
# login providers
# ---------------------------------------------------------------------------------------------

AUTH_URL_ENDPOINTS = {
    "codex-auth-url": "codex",
    "anthropic-auth-url": "anthropic",
    "gemini-cli-auth-url": "gemini",
    "antigravity-auth-url": "antigravity",
    "iflow-auth-url": "iflow",
    "github-auth-url": "github",
    "qwen-auth-url": "qwen",
    "kimi-auth-url": "kimi",
    "kiro-auth-url": "kiro",
}
if MAINLINE:  # v7 built-ins only: no github (Copilot), gemini-cli, qwen, iflow or kiro routes
    AUTH_URL_ENDPOINTS = {"codex-auth-url": "codex", "anthropic-auth-url": "anthropic",
                          "antigravity-auth-url": "antigravity", "kimi-auth-url": "kimi", "xai-auth-url": "xai"}
DEVICE_PROVIDERS = ("github", "qwen", "kimi", "xai")
FAILING_MODEL_PREFIX = "double-fail"  # every API route answers 500 for a model id starting with this
OK_WINDOW = _env_float("CLIPROXY_DOUBLE_OK_WINDOW", 60.0)  # mainline: a finished login answers ok this long
CALLBACK_PROVIDER_ALIASES = {
    "anthropic": "anthropic",
    "claude": "anthropic",
    "codex": "codex",
    "openai": "codex",
    "gemini": "gemini",
    "gemini-cli": "gemini",
    "google": "gemini",
    "antigravity": "antigravity",
    "anti-gravity": "antigravity",
    "iflow": "iflow",
    "i-flow": "iflow",
}
CALLBACK_PORTS = {"codex": 1455, "anthropic": 54545, "gemini": 8085, "antigravity": 51121, "iflow": 11451}
KIRO_METHODS = ("aws", "builder-id", "google", "github")
_STATE_RE = re.compile(r"^[A-Za-z0-9._-]{1,256}$")


def valid_state(state: str) -> bool:
    return bool(_STATE_RE.match(state)) and ".." not in state


def fake_jwt(claims: dict) -> str:
    def b64(obj) -> str:
        import base64

        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.double-signature"


def build_account(provider: str, email: str, username: str, extra: dict) -> tuple[str, dict]:
    now = utc_now()
    exp = now + timedelta(days=10)
    token = secrets.token_hex(16)
    email = email or "user@example.com"
    username = username or "double-user"
    if provider == "codex":
        account_id = str(uuid.uuid4())
        prefix = f"codex-{hashlib.sha256(account_id.encode()).hexdigest()[:8]}-" if MAINLINE else "codex-"
        return f"{prefix}{safe_name_part(email)}.json", {
            "type": "codex",
            "id_token": fake_jwt({"email": email, "https://api.openai.com/auth": {"chatgpt_account_id": account_id}}),
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "account_id": account_id,
            "email": email,
            "last_refresh": rfc3339(now),
            "expired": rfc3339(exp),
        }
    if provider == "anthropic":
        return f"claude-{safe_name_part(email)}.json", {
            "type": "claude",
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "email": email,
            "last_refresh": rfc3339(now),
            "expired": rfc3339(exp),
        }
    if provider == "gemini":
        project = extra.get("project_id") or "double-project"
        return f"gemini-{safe_name_part(email)}-{safe_name_part(project)}.json", {
            "type": "gemini",
            "email": email,
            "project_id": project,
            "auto": True,
            "checked": True,
            "token": {
                "access_token": f"double-access-{token}",
                "refresh_token": f"double-refresh-{token}",
                "token_type": "Bearer",
                "expiry": rfc3339(exp),
            },
        }
    if provider == "antigravity":
        return f"antigravity-{safe_name_part(email)}.json", {
            "type": "antigravity",
            "email": email,
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "expired": rfc3339(exp),
            "timestamp": int(now.timestamp() * 1000),
        }
    if provider == "iflow":
        return f"iflow-{safe_name_part(email)}.json", {
            "type": "iflow",
            "email": email,
            "api_key": f"double-key-{token}",
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "last_refresh": rfc3339(now),
            "expired": rfc3339(exp),
        }
    if provider == "github":
        return f"github-{safe_name_part(username)}.json", {
            "type": "github-copilot",
            "access_token": f"gho_double{token}",
            "token_type": "bearer",
            "scope": "read:user",
            "username": username,
        }
    if provider == "qwen":
        return f"qwen-{safe_name_part(email)}.json", {
            "type": "qwen",
            "email": email,
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "resource_url": "portal.qwen.ai",
            "last_refresh": rfc3339(now),
            "expired": rfc3339(exp),
        }
    if provider == "kimi":
        return f"kimi-{safe_name_part(username)}.json", {
            "type": "kimi",
            "username": username,
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "expired": rfc3339(exp),
        }
    if provider == "xai":
        return f"xai-{safe_name_part(email)}.json", {
            "type": "xai",
            "email": email,
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "expired": rfc3339(exp),
        }
    if provider == "kiro":
        method = extra.get("method") or "aws"
        return f"kiro-{safe_name_part(method)}-{safe_name_part(username)}.json", {
            "type": "kiro",
            "auth_method": method,
            "access_token": f"double-access-{token}",
            "refresh_token": f"double-refresh-{token}",
            "expires_at": rfc3339(exp),
        }
    raise ValueError(f"unsupported provider {provider}")


def infer_type(name: str, data: dict) -> str:
    t = data.get("type")
    if isinstance(t, str) and t.strip():
        t = t.strip().lower()
    else:
        t = name.split("-", 1)[0].lower()
    return {"anthropic": "claude", "github": "github-copilot", "copilot": "github-copilot"}.get(t, t)


# ---------------------------------------------------------------------------------------------
# shared server state
# ---------------------------------------------------------------------------------------------


class State:
    def __init__(self, config_path: str, cfg: dict, text: str):
        self.lock = threading.RLock()
        self.config_path = config_path
        self.cfg = cfg
        self.config_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.auth_dir = resolve_auth_dir(cfg["auth-dir"])
        self.stop = threading.Event()
        self.accounts: dict[str, dict] = {}
        self._account_cache: dict[str, tuple] = {}
        self.sessions: dict[str, dict] = {}
        self.rr_counters: dict[str, int] = {}
        self.failed_attempts: dict[str, dict] = {}
        self.env_secret = os.environ.get("MANAGEMENT_PASSWORD", "").strip()
        self.local_password = os.environ.get("CLIPROXY_DOUBLE_LOCAL_PASSWORD", "").strip()
        self.env_models = [m.strip() for m in os.environ.get("CLIPROXY_DOUBLE_MODELS", "").split(",") if m.strip()]
        self.mgmt_enabled = bool(cfg["remote-management"]["secret-key"] or self.env_secret or self.local_password)
        self.session_ttl = _env_float("CLIPROXY_DOUBLE_SESSION_TTL", 1800.0 if MAINLINE else 600.0)
        self.callback_delay = _env_float("CLIPROXY_DOUBLE_CALLBACK_DELAY", 0.05)
        self.stream_delay = _env_float("CLIPROXY_DOUBLE_STREAM_DELAY", 0.0)
        self.poll_interval = max(0.05, _env_float("CLIPROXY_DOUBLE_POLL_INTERVAL", 0.3))
        self.trust_forwarded = os.environ.get("CLIPROXY_DOUBLE_TRUST_FORWARDED", "1") != "0"
        self.bound_host = cfg["host"]
        self.bound_port = cfg["port"]
        self.usage = self._empty_usage()
        self._missing_logged = False

    # -- config hot reload ----------------------------------------------------------------------

    @staticmethod
    def _empty_usage() -> dict:
        return {
            "total_requests": 0,
            "success_count": 0,
            "failure_count": 0,
            "total_tokens": 0,
            "apis": {},
            "requests_by_day": {},
            "requests_by_hour": {},
            "tokens_by_day": {},
            "tokens_by_hour": {},
        }

    def check_config(self) -> None:
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
        text = raw.decode("utf-8", errors="replace")
        try:
            new_cfg = parse_config_text(text)
        except ConfigError as exc:
            self.config_digest = digest
            log("error", f"failed to reload config: {exc}")
            return
        secret = new_cfg["remote-management"]["secret-key"]
        if secret and not looks_like_bcrypt(secret):
            hashed = hash_secret(secret)
            new_cfg["remote-management"]["secret-key"] = hashed
            raw_rm = new_cfg["raw"].get("remote-management")
            if isinstance(raw_rm, dict):
                raw_rm["secret-key"] = hashed
            if persist_hashed_secret(self.config_path, secret, hashed):
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
            changes = []
            for key in ("api-keys", "debug", "usage-statistics-enabled", "proxy-url", "request-retry", "routing"):
                if old.get(key) != new_cfg.get(key):
                    changes.append(key)
            if old["remote-management"] != new_cfg["remote-management"]:
                changes.append("remote-management")
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
                self.accounts = {}
                self._account_cache = {}
            if self.env_secret or self.local_password:
                self.mgmt_enabled = True
            else:
                was = self.mgmt_enabled
                self.mgmt_enabled = bool(new_cfg["remote-management"]["secret-key"])
                if was != self.mgmt_enabled:
                    log("info", "management routes " + ("enabled after secret key update" if self.mgmt_enabled else "disabled after secret key removal"))
        log("info", "config file changed, reloaded" + (f" ({', '.join(changes)})" if changes else ""))
        self.rescan_accounts()

    # -- auth-dir watching ----------------------------------------------------------------------

    def rescan_accounts(self) -> None:
        with self.lock:
            auth_dir = self.auth_dir
            found: dict[str, dict] = {}
            try:
                entries = list(os.scandir(auth_dir))
            except OSError:
                entries = []
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
                cached = self._account_cache.get(name)
                if cached and cached[0] == key:
                    account = cached[1]
                else:
                    account = self._load_account(entry.path, name, st)
                    self._account_cache[name] = (key, account)
                    if account is not None:
                        verb = "updated" if name in self.accounts else "added"
                        state = "disabled" if account["disabled"] else "enabled"
                        log("info", f"auth file {verb}: {name} (type {account['type']}, {state})")
                if account is not None:
                    found[name] = account
            for name in set(self.accounts) - set(found):
                log("info", f"auth file removed: {name}")
            for name in set(self._account_cache) - {e.name for e in entries}:
                self._account_cache.pop(name, None)
            self.accounts = found

    @staticmethod
    def _load_account(path: str, name: str, st) -> dict | None:
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
            "type": infer_type(name, data),
            "email": email,
            "label": email or username or name[:-5],
            "disabled": data.get("disabled") is True,
            "last_refresh": data.get("last_refresh") or "",
            "size": st.st_size,
            "modtime": rfc3339(datetime.fromtimestamp(st.st_mtime, timezone.utc)),
            "data": data,
        }

    def watch_loop(self) -> None:
        while not self.stop.wait(self.poll_interval):
            try:
                self.check_config()
            except Exception as exc:  # never let the watcher die
                log("error", f"config watcher: {exc}")
            try:
                self.rescan_accounts()
            except Exception as exc:
                log("error", f"auth-dir watcher: {exc}")

    # -- models -----------------------------------------------------------------------------------

    def models(self) -> list[dict]:
        with self.lock:
            types = {a["type"] for a in self.accounts.values() if not a["disabled"]}
            out: dict[str, dict] = {}
            for t in sorted(types):
                for model_id, owner in CATALOGUE.get(t, []):
                    out.setdefault(model_id, {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": owner})
            for model_id in self.env_models:
                out.setdefault(model_id, {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "cliproxy-double"})
            return list(out.values())

    def pick_account(self, model: str) -> str | None:
        with self.lock:
            candidates = sorted(
                a["name"]
                for a in self.accounts.values()
                if not a["disabled"] and any(m == model for m, _ in CATALOGUE.get(a["type"], []))
            )
            if candidates:
                if self.cfg["routing"]["strategy"] == "fill-first":
                    return candidates[0]
                n = self.rr_counters.get(model, 0)
                self.rr_counters[model] = n + 1
                return candidates[n % len(candidates)]
            if model in self.env_models:
                return "env"
            return None

    def record_usage(self, endpoint: str, model: str, tokens: int, ok: bool) -> None:
        with self.lock:
            if not self.cfg["usage-statistics-enabled"]:
                return
            u = self.usage
            now = datetime.now()
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
            u["requests_by_day"][day] = u["requests_by_day"].get(day, 0) + 1
            u["requests_by_hour"][hour] = u["requests_by_hour"].get(hour, 0) + 1
            u["tokens_by_day"][day] = u["tokens_by_day"].get(day, 0) + tokens
            u["tokens_by_hour"][hour] = u["tokens_by_hour"].get(hour, 0) + tokens

    # -- login sessions ---------------------------------------------------------------------------

    def purge_sessions(self) -> None:
        now = time.monotonic()
        for state in [s for s, v in self.sessions.items() if now - v["created"] > self.session_ttl]:
            self.sessions.pop(state, None)

    def new_session(self, provider: str, **extra) -> str:
        state = secrets.token_hex(16)
        with self.lock:
            self.purge_sessions()
            self.sessions[state] = {"provider": provider, "status": "", "created": time.monotonic(), **extra}
        return state

    def get_session(self, state: str) -> dict | None:
        with self.lock:
            self.purge_sessions()
            return self.sessions.get(state)

    @staticmethod
    def is_pending(session: dict) -> bool:
        if "done" in session:
            return False
        status = session.get("status", "")
        if not status:
            return True
        return session["provider"] == "kiro" and status.startswith(("device_code|", "auth_url|"))

    def complete_session(self, state: str, email: str = "", username: str = "", extra: dict | None = None) -> str:
        with self.lock:
            session = self.sessions.get(state)
            if session is None:
                raise KeyError(state)
            merged = {k: v for k, v in session.items() if k in ("project_id", "method")}
            merged.update(extra or {})
            name, data = build_account(session["provider"], email, username, merged)
            path = os.path.join(self.auth_dir, name)
            ensure_auth_dir(self.auth_dir)
            atomic_write(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), mode=0o600)
            if MAINLINE:  # v7 reports a finished login as ok for OK_WINDOW seconds, then forgets it
                session["done"] = time.monotonic()
            else:  # Plus forgets completed sessions at once (and answers ok for unknown states)
                self.sessions.pop(state, None)
        log("info", f"authentication successful, saved credentials to {path}")
        self.rescan_accounts()
        return name

    def fail_session(self, state: str, message: str) -> None:
        with self.lock:
            session = self.sessions.get(state)
            if session is not None:
                session["status"] = message
        log("error", f"authentication failed for state {state}: {message}")


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def openai_error(message: str, etype: str = "invalid_request_error", code: str | None = None) -> dict:
    err = {"message": message, "type": etype}
    if code:
        err["code"] = code
    return {"error": err}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "DoubleServer"

    # silence the default stderr access log; we log ourselves
    def log_message(self, format, *args):  # noqa: A002
        pass

    def send_response(self, code, message=None):
        self._status = code
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    @property
    def state(self) -> State:
        return self.server.state

    # -- plumbing ---------------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
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
        if self.state.trust_forwarded:
            for header in ("X-Forwarded-For", "X-Real-IP"):
                value = self.headers.get(header)
                if value:
                    first = value.split(",")[0].strip()
                    try:
                        return str(ipaddress.ip_address(first))
                    except ValueError:
                        pass
        ip = self.client_address[0]
        if ip.startswith("::ffff:"):
            ip = ip[7:]
        return ip

    def _send(self, status: int, body: bytes, ctype: str, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for k, v in self._extra_headers + (headers or []):
            self.send_header(k, v)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._headers_done = True
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: list[tuple[str, str]] | None = None) -> None:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _not_found(self) -> None:
        self._send(404, b"404 page not found", "text/plain")

    def _start_stream(self, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(200)
        for k, v in self._extra_headers + (headers or []):
            self.send_header(k, v)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "keep-alive")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._headers_done = True

    def _chunk(self, data: str) -> None:
        raw = data.encode("utf-8")
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        if self.state.stream_delay > 0:
            time.sleep(self.state.stream_delay)

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _sse_data(self, obj) -> None:
        self._chunk("data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n")

    def _sse_event(self, event: str, obj) -> None:
        self._chunk(f"event: {event}\ndata: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n")

    def _json_body(self) -> dict | None:
        try:
            data = json.loads(self._body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            self._json(400, openai_error(f"Invalid request: {exc}"))
            return None
        if not isinstance(data, dict):
            self._json(400, openai_error("Invalid request: body must be a JSON object"))
            return None
        return data

    # -- routing ----------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict) -> None:
        if method == "OPTIONS":  # the real server's CORS middleware answers every preflight
            self._send(
                204,
                b"",
                "",
                [
                    ("Access-Control-Allow-Origin", "*"),
                    ("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
                    ("Access-Control-Allow-Headers", "*"),
                ],
            )
            return
        if path == "/" and method == "GET":
            self._json(
                200,
                {
                    "message": "CLI Proxy API Server",
                    "endpoints": ["POST /v1/chat/completions", "POST /v1/completions", "GET /v1/models"],
                },
            )
            return
        if path == "/healthz" and method == "GET" and MAINLINE:  # Plus tags have no health route
            self._json(200, {"status": "ok"})
            return
        if path.startswith("/v0/management/"):
            self._management(method, path[len("/v0/management"):], query)
            return
        api_routes = {
            ("GET", "/v1/models"): self._models,
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
        if not self._check_api_key(query):
            return
        handler()

    def _check_api_key(self, query: dict) -> bool:
        with self.state.lock:
            keys = list(self.state.cfg["api-keys"])
        if not keys:
            return True  # empty api-keys list: no client authentication at all
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

    # -- /v1 ----------------------------------------------------------------------------------------

    def _models(self) -> None:
        self._json(200, {"object": "list", "data": self.state.models()})

    def _resolve(self, data: dict, anthropic: bool = False) -> tuple[str, str] | None:
        model = data.get("model")
        model = model.strip() if isinstance(model, str) else ""
        if model.startswith(FAILING_MODEL_PREFIX):  # an upstream that fails, for fallback tests
            message = f"upstream failure for {model} (double)"
            body = ({"type": "error", "error": {"type": "api_error", "message": message}} if anthropic
                    else openai_error(message, "server_error", code="upstream_error"))
            self._json(500, body)
            return None
        account = self.state.pick_account(model) if model else None
        if account is None:
            message = f"unknown provider for model {model}"
            if anthropic:
                body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
            else:
                body = openai_error(message, code="model_not_found")
            self._json(400, body)
            self.state.record_usage(self.path.split("?")[0], model or "-", 0, False)
            return None
        return model, account

    def _chat(self) -> None:
        data = self._json_body()
        if data is None:
            return
        resolved = self._resolve(data)
        if resolved is None:
            return
        model, account = resolved
        messages = data.get("messages") if isinstance(data.get("messages"), list) else []
        prompt_words = sum(words(content_text(m.get("content"))) for m in messages if isinstance(m, dict))
        last_user = ""
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user":
                last_user = content_text(m.get("content"))
        text = reply_for(model, last_user)
        usage = {"prompt_tokens": prompt_words, "completion_tokens": words(text), "total_tokens": prompt_words + words(text)}
        self.state.record_usage("/v1/chat/completions", model, usage["total_tokens"], True)
        cid, created = new_id("chatcmpl-"), int(time.time())
        hdrs = [("X-Double-Account", account)]
        if not data.get("stream"):
            self._json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
                hdrs,
            )
            return
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        self._start_stream(hdrs)
        self._sse_data({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]})
        for piece in split_deltas(text):
            self._sse_data({**base, "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]})
        self._sse_data({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
        opts = data.get("stream_options") if isinstance(data.get("stream_options"), dict) else {}
        if opts.get("include_usage"):
            self._sse_data({**base, "choices": [], "usage": usage})
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def _completions(self) -> None:
        data = self._json_body()
        if data is None:
            return
        resolved = self._resolve(data)
        if resolved is None:
            return
        model, account = resolved
        prompt = data.get("prompt")
        if isinstance(prompt, list):
            prompt = next((p for p in reversed(prompt) if isinstance(p, str)), "")
        prompt = prompt if isinstance(prompt, str) else ""
        text = reply_for(model, prompt)
        usage = {"prompt_tokens": words(prompt), "completion_tokens": words(text), "total_tokens": words(prompt) + words(text)}
        self.state.record_usage("/v1/completions", model, usage["total_tokens"], True)
        cid, created = new_id("cmpl-"), int(time.time())
        hdrs = [("X-Double-Account", account)]
        if not data.get("stream"):
            self._json(
                200,
                {
                    "id": cid,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                    "usage": usage,
                },
                hdrs,
            )
            return
        base = {"id": cid, "object": "text_completion", "created": created, "model": model}
        self._start_stream(hdrs)
        for piece in split_deltas(text):
            self._sse_data({**base, "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": None}]})
        self._sse_data({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]})
        opts = data.get("stream_options") if isinstance(data.get("stream_options"), dict) else {}
        if opts.get("include_usage"):
            self._sse_data({**base, "choices": [], "usage": usage})
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def _responses(self) -> None:
        data = self._json_body()
        if data is None:
            return
        resolved = self._resolve(data)
        if resolved is None:
            return
        model, account = resolved
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
        self.state.record_usage("/v1/responses", model, usage["total_tokens"], True)
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

        hdrs = [("X-Double-Account", account)]
        if not data.get("stream"):
            self._json(200, response_obj("completed"), hdrs)
            return
        seq = 0

        def emit(event_type: str, payload: dict) -> None:
            nonlocal seq
            self._sse_event(event_type, {"type": event_type, "sequence_number": seq, **payload})
            seq += 1

        self._start_stream(hdrs)
        emit("response.created", {"response": response_obj("in_progress")})
        emit("response.in_progress", {"response": response_obj("in_progress")})
        emit(
            "response.output_item.added",
            {"output_index": 0, "item": {"id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        )
        emit(
            "response.content_part.added",
            {"item_id": msg_id, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}},
        )
        for piece in split_deltas(text):
            emit(
                "response.output_text.delta",
                {"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []},
            )
        emit("response.output_text.done", {"item_id": msg_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []})
        emit("response.content_part.done", {"item_id": msg_id, "output_index": 0, "content_index": 0, "part": part})
        emit("response.output_item.done", {"output_index": 0, "item": item_done})
        emit("response.completed", {"response": response_obj("completed")})
        self._end_stream()

    @staticmethod
    def _anthropic_prompt(data: dict) -> tuple[int, str]:
        system = data.get("system")
        total = words(content_text(system))
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
        if data is None:
            return
        resolved = self._resolve(data, anthropic=True)
        if resolved is None:
            return
        model, account = resolved
        in_words, last_user = self._anthropic_prompt(data)
        text = reply_for(model, last_user)
        out_words = words(text)
        self.state.record_usage("/v1/messages", model, in_words + out_words, True)
        mid = new_id("msg_")
        hdrs = [("X-Double-Account", account)]
        usage = {"input_tokens": in_words, "output_tokens": out_words, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not data.get("stream"):
            self._json(
                200,
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
                hdrs,
            )
            return
        self._start_stream(hdrs)
        self._sse_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 0},
                },
            },
        )
        self._sse_event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        self._sse_event("ping", {"type": "ping"})
        for piece in split_deltas(text):
            self._sse_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
        self._sse_event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._sse_event(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": out_words}},
        )
        self._sse_event("message_stop", {"type": "message_stop"})
        self._end_stream()

    def _count_tokens(self) -> None:
        data = self._json_body()
        if data is None:
            return
        if self._resolve(data, anthropic=True) is None:
            return
        in_words, _ = self._anthropic_prompt(data)
        self._json(200, {"input_tokens": in_words})

    # -- /v0/management ------------------------------------------------------------------------------

    def _management(self, method: str, sub: str, query: dict) -> None:
        st = self.state
        if not st.mgmt_enabled:
            self._send(404, b"", "")  # routes disabled: bare 404, like the real availability gate
            return
        routes = {
            ("GET", "/config"): self._m_config,
            ("GET", "/latest-version"): self._m_latest_version,
            ("GET", "/usage"): self._m_usage,
            ("GET", "/api-keys"): self._m_api_keys,
            ("GET", "/auth-files"): self._m_auth_files,
            ("DELETE", "/auth-files"): self._m_delete_auth_file,
            ("POST", "/auth-files"): self._m_upload_auth_file,
            ("PATCH", "/auth-files/status"): self._m_auth_file_status,
            ("GET", "/auth-files/download"): self._m_download_auth_file,
            ("GET", "/get-auth-status"): self._m_auth_status,
            ("POST", "/oauth-callback"): self._m_oauth_callback,
            ("POST", "/_double/complete"): self._m_double_complete,
        }
        if MAINLINE:
            routes[("DELETE", "/oauth-session")] = self._m_cancel_session
        handler = routes.get((method, sub))
        if handler is None and method == "GET" and sub.lstrip("/") in AUTH_URL_ENDPOINTS:
            provider = AUTH_URL_ENDPOINTS[sub.lstrip("/")]
            handler = lambda q: self._m_auth_url(provider, q)  # noqa: E731
        if handler is None:
            self._not_found()
            return
        self._extra_headers = [("X-CPA-VERSION", VERSION), ("X-CPA-COMMIT", COMMIT), ("X-CPA-BUILD-DATE", BUILD_DATE)]
        if self._management_auth():
            handler(query)

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
                if info["count"] >= 5:
                    info["blocked_until"] = time.time() + 30 * 60
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
        if local and st.local_password and hmac.compare_digest(provided.encode(), st.local_password.encode()):
            return True
        if env_secret and hmac.compare_digest(provided.encode(), env_secret.encode()):
            self._reset_attempts(ip, local)
            return True
        if not secret_hash or not verify_secret(secret_hash, provided):
            fail()
            self._json(401, {"error": "invalid management key"})
            return False
        self._reset_attempts(ip, local)
        return True

    def _reset_attempts(self, ip: str, local: bool) -> None:
        if local:
            return
        with self.state.lock:
            info = self.state.failed_attempts.get(ip)
            if info:
                info["count"] = 0
                info["blocked_until"] = 0.0

    def _m_config(self, query: dict) -> None:
        st = self.state
        with st.lock:
            cfg = st.cfg
            out = copy.deepcopy(cfg["raw"])
            for key in ("host", "port", "api-keys", "debug", "logging-to-file", "request-log", "usage-statistics-enabled", "proxy-url", "request-retry"):
                out[key] = copy.deepcopy(cfg[key])
            out["auth-dir"] = st.auth_dir
            out["routing"] = {**(out.get("routing") if isinstance(out.get("routing"), dict) else {}), **cfg["routing"]}
            rm = out.get("remote-management") if isinstance(out.get("remote-management"), dict) else {}
            out["remote-management"] = {**rm, **cfg["remote-management"]}
        self._json(200, json.loads(json.dumps(out, default=str)))

    def _m_latest_version(self, query: dict) -> None:
        default = "v" + (VERSION[: -len("-plus")] if VERSION.endswith("-plus") else VERSION)
        self._json(200, {"latest-version": _env("CLIPROXY_DOUBLE_LATEST_VERSION", default)})

    def _m_usage(self, query: dict) -> None:
        with self.state.lock:
            usage = copy.deepcopy(self.state.usage)
        self._json(200, {"usage": usage, "failed_requests": usage["failure_count"]})

    def _m_api_keys(self, query: dict) -> None:
        with self.state.lock:
            self._json(200, {"api-keys": list(self.state.cfg["api-keys"])})

    def _m_auth_files(self, query: dict) -> None:
        st = self.state
        st.rescan_accounts()
        files = []
        with st.lock:
            for name in sorted(st.accounts):
                a = st.accounts[name]
                files.append(
                    {
                        "id": name,
                        "name": name,
                        "type": a["type"],
                        "provider": a["type"],
                        "label": a["label"],
                        "email": a["email"],
                        "status": "disabled" if a["disabled"] else "active",
                        "status_message": "",
                        "disabled": a["disabled"],
                        "unavailable": False,
                        "runtime_only": False,
                        "source": "file",
                        "size": a["size"],
                        "modtime": a["modtime"],
                        "last_refresh": a["last_refresh"],
                        "path": a["path"],
                        "account_type": "oauth",
                        "account": a["email"] or a["label"],
                    }
                )
        self._json(200, {"files": files})

    @staticmethod
    def _valid_file_name(name: str) -> bool:
        return bool(name) and name.endswith(".json") and "/" not in name and "\\" not in name and name not in (".", "..") and not name.startswith(".")

    def _m_delete_auth_file(self, query: dict) -> None:
        st = self.state
        if query.get("all", [""])[0].lower() in ("true", "1"):
            deleted = 0
            for entry in list(os.scandir(st.auth_dir)) if os.path.isdir(st.auth_dir) else []:
                if entry.is_file() and self._valid_file_name(entry.name):
                    try:
                        os.remove(entry.path)
                        deleted += 1
                    except OSError:
                        pass
            st.rescan_accounts()
            self._json(200, {"status": "ok", "deleted": deleted})
            return
        name = (query.get("name") or [""])[0].strip()
        if not self._valid_file_name(name):
            self._json(400, {"error": "invalid name"})
            return
        path = os.path.join(st.auth_dir, name)
        if not os.path.isfile(path):
            self._json(404, {"error": "file not found"})
            return
        try:
            os.remove(path)
        except OSError as exc:
            self._json(500, {"error": f"failed to remove file: {exc}"})
            return
        st.rescan_accounts()
        self._json(200, {"status": "ok"})

    def _m_upload_auth_file(self, query: dict) -> None:
        st = self.state
        ctype = self.headers.get("Content-Type", "")
        name = (query.get("name") or [""])[0].strip()
        payload = self._body
        if ctype.lower().startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + self._body
            )
            payload = None
            for part in msg.iter_parts():
                if part.get_param("name", header="content-disposition") == "file":
                    name = part.get_filename() or name
                    payload = part.get_payload(decode=True)
                    break
            if payload is None:
                self._json(400, {"error": "no file uploaded"})
                return
        name = os.path.basename(name)
        if not self._valid_file_name(name):
            self._json(400, {"error": "file must be .json"})
            return
        try:
            data = json.loads(payload.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            self._json(400, {"error": "invalid auth file"})
            return
        ensure_auth_dir(st.auth_dir)
        atomic_write(os.path.join(st.auth_dir, name), payload, mode=0o600)
        st.rescan_accounts()
        self._json(200, {"status": "ok"})

    def _m_download_auth_file(self, query: dict) -> None:
        name = (query.get("name") or [""])[0].strip()
        if not self._valid_file_name(name):
            self._json(400, {"error": "invalid name"})
            return
        path = os.path.join(self.state.auth_dir, name)
        try:
            with open(path, "rb") as fh:
                body = fh.read()
        except OSError:
            self._json(404, {"error": "file not found"})
            return
        self._send(200, body, "application/json", [("Content-Disposition", f'attachment; filename="{name}"')])

    def _m_auth_file_status(self, query: dict) -> None:
        st = self.state
        try:
            body = json.loads(self._body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self._json(400, {"error": "invalid request body"})
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
        st.rescan_accounts()
        self._json(200, {"status": "ok", "disabled": body["disabled"]})

    def _m_auth_url(self, provider: str, query: dict) -> None:
        st = self.state
        q = {k: v[0] for k, v in query.items() if v}
        if provider == "kiro":
            method = q.get("method", "").strip().lower() or "aws"
            if method not in KIRO_METHODS:
                self._json(400, {"status": "error", "error": f"invalid method, must be one of: {', '.join(KIRO_METHODS)}"})
                return
            state = st.new_session("kiro", method=method)
            with st.lock:
                if method in ("aws", "builder-id"):
                    code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
                    st.sessions[state]["status"] = f"device_code|https://view.awsapps.com/start/#/device?user_code={code}|{code}"
                else:
                    st.sessions[state]["status"] = (
                        f"auth_url|https://prod.us-east-1.auth.desktop.kiro.dev/login?idp={method.capitalize()}&state={state}"
                    )
            log("info", f"kiro login started (method {method}), state {state}")
            self._json(200, {"status": "ok", "state": state, "method": method})
            return
        if provider in DEVICE_PROVIDERS:
            user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
            state = st.new_session(provider, user_code=user_code)
            if provider == "github":
                uri = "https://github.com/login/device"
                log("info", f"github copilot device flow started, state {state}")
                self._json(200, {"status": "ok", "url": uri, "state": state, "user_code": user_code, "verification_uri": uri})
            elif provider == "qwen":
                self._json(200, {"status": "ok", "url": f"https://chat.qwen.ai/authorize?user_code={user_code}&client=qwen-code", "state": state})
            elif provider == "kimi":
                url = f"https://www.kimi.com/code/authorize_device?user_code={user_code}"
                extra = {"flow": "device", "user_code": user_code, "expires_in": 900} if MAINLINE else {}
                self._json(200, {"status": "ok", "url": url, "state": state, **extra})
            else:
                self._json(200, {"status": "ok", "url": f"https://accounts.x.ai/device?user_code={user_code}", "state": state,
                                 "flow": "device", "user_code": user_code, "expires_in": 900})
            return
        extra = {}
        if provider == "gemini" and q.get("project_id"):
            extra["project_id"] = q["project_id"]
        state = st.new_session(provider, **extra)
        redirect = f"http://localhost:{CALLBACK_PORTS[provider]}/auth/callback"
        challenge = secrets.token_urlsafe(32)
        params = urllib.parse.urlencode(
            {
                "client_id": "cliproxy-double",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "redirect_uri": redirect,
                "response_type": "code",
                "scope": "openid email profile offline_access",
                "state": state,
            }
        )
        base = {
            "codex": "https://auth.openai.com/oauth/authorize",
            "anthropic": "https://claude.ai/oauth/authorize",
            "gemini": "https://accounts.google.com/o/oauth2/auth",
            "antigravity": "https://accounts.google.com/o/oauth2/v2/auth",
            "iflow": "https://iflow.cn/oauth",
        }[provider]
        if q.get("is_webui", "").lower() in ("true", "1"):
            log("warn", f"is_webui=true: the double does not listen on port {CALLBACK_PORTS[provider]}; use POST /oauth-callback")
        log("info", f"{provider} login started, state {state}")
        self._json(200, {"status": "ok", "url": f"{base}?{params}", "state": state})

    def _m_cancel_session(self, query: dict) -> None:
        state = (query.get("state") or [""])[0].strip()
        st = self.state
        with st.lock:
            session = st.sessions.get(state) if valid_state(state) else None
            if session is None or not st.is_pending(session):
                self._json(404, {"status": "error", "error": "unknown or expired state"})
                return
            st.sessions.pop(state, None)
        log("info", f"login session {state} cancelled")
        self._json(200, {"status": "ok", "cancelled": True})

    def _m_auth_status(self, query: dict) -> None:
        state = (query.get("state") or [""])[0].strip()
        if not state:
            self._json(200, {"status": "ok"})
            return
        if not valid_state(state):
            self._json(400, {"status": "error", "error": "invalid state"})
            return
        session = self.state.get_session(state)
        if session is not None and "done" in session:
            if time.monotonic() - session["done"] <= OK_WINDOW:
                self._json(200, {"status": "ok"})
                return
            session = None
        if session is None:
            if MAINLINE:  # v7 answers what it does not know with an error
                self._json(200, {"status": "error", "error": "unknown or expired state"})
            else:  # the Plus tag answers ok for an unknown/expired state: faithful to the real server
                self._json(200, {"status": "ok"})
            return
        status = session.get("status", "")
        if status:
            if status.startswith("device_code|"):
                parts = status.split("|", 2)
                if len(parts) == 3:
                    self._json(200, {"status": "device_code", "verification_url": parts[1], "user_code": parts[2]})
                    return
            if status.startswith("auth_url|"):
                self._json(200, {"status": "auth_url", "url": status[len("auth_url|"):]})
                return
            self._json(200, {"status": "error", "error": status})
            return
        self._json(200, {"status": "wait"})

    def _m_oauth_callback(self, query: dict) -> None:
        st = self.state
        try:
            body = json.loads(self._body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self._json(400, {"status": "error", "error": "invalid body"})
            return
        provider_raw = str(body.get("provider") or "").strip().lower()
        canonical = CALLBACK_PROVIDER_ALIASES.get(provider_raw)
        if canonical is None:
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
        session = st.get_session(state)
        if session is None:
            self._json(404, {"status": "error", "error": "unknown or expired state"})
            return
        if session["provider"] != canonical:
            self._json(400, {"status": "error", "error": "provider does not match state"})
            return
        with st.lock:
            if not st.is_pending(session) or session.get("callback_received"):
                self._json(409, {"status": "error", "error": session.get("status") or "oauth flow is not pending"})
                return
            session["callback_received"] = True
        # the real server hands the callback to the waiting login goroutine through this file
        tmp_path = os.path.join(st.auth_dir, f".oauth-{canonical}-{state}.oauth")
        try:
            ensure_auth_dir(st.auth_dir)
            atomic_write(tmp_path, json.dumps({"code": code, "state": state, "error": err}).encode(), mode=0o600)
        except OSError as exc:
            log("error", f"failed to persist oauth callback: {exc}")
            self._json(500, {"status": "error", "error": "failed to persist oauth callback"})
            return
        threading.Thread(
            target=self._finish_callback, args=(st, state, code, err, email_addr, tmp_path), daemon=True
        ).start()
        self._json(200, {"status": "ok"})

    @staticmethod
    def _finish_callback(st: State, state: str, code: str, err: str, email_addr: str, tmp_path: str) -> None:
        if st.callback_delay > 0:
            time.sleep(st.callback_delay)
        try:
            if err:
                st.fail_session(state, f"Authentication failed: {err}")
            elif code == "bad-code":
                st.fail_session(state, "Failed to exchange authorization code for tokens")
            else:
                try:
                    st.complete_session(state, email=email_addr)
                except KeyError:
                    pass
                except OSError as exc:
                    st.fail_session(state, f"Failed to save authentication tokens: {exc}")
        finally:
            try:
                os.remove(tmp_path)
            except OSError:
                pass

    def _m_double_complete(self, query: dict) -> None:
        st = self.state
        try:
            body = json.loads(self._body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self._json(400, {"status": "error", "error": "invalid body"})
            return
        state = str(body.get("state") or "").strip()
        session = st.get_session(state) if state else None
        if session is None:
            self._json(404, {"status": "error", "error": "unknown or expired state"})
            return
        if not st.is_pending(session):
            self._json(409, {"status": "error", "error": session.get("status") or "oauth flow is not pending"})
            return
        if body.get("ok", True) is False:
            message = str(body.get("error") or "Authentication failed")
            st.fail_session(state, message)
            self._json(200, {"status": "ok", "result": "error", "error": message})
            return
        extra = {k: str(body[k]) for k in ("project_id", "method") if body.get(k)}
        try:
            name = st.complete_session(
                state, email=str(body.get("email") or ""), username=str(body.get("username") or ""), extra=extra
            )
        except KeyError:
            self._json(404, {"status": "error", "error": "unknown or expired state"})
            return
        self._json(200, {"status": "ok", "result": "ok", "file": name})


class DoubleServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # Go sets SO_REUSEADDR too; a *listening* port still conflicts
    request_queue_size = 128

    def __init__(self, address, handler, state: State, family: int = socket.AF_INET):
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
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def make_server(host: str, port: int, state: State) -> DoubleServer:
    """Bind like net.Listen("tcp", host:port); raises RuntimeError with a Go-style message."""
    addr = go_listen_addr(host, port)
    if port < 0 or port > 65535:
        raise RuntimeError(f"listen tcp: address {addr}: invalid port")
    bind_host = host or "0.0.0.0"
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


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "cli-proxy-api-plus"
    sys.stdout.write(f"CLIProxyAPI Version: {VERSION}, Commit: {COMMIT}, BuiltAt: {BUILD_DATE}\n")
    sys.stdout.flush()

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
    if any(flags.get(name) for name in LOGIN_FLAGS) or flags.get("vertex-import"):
        log("error", "interactive login flags are not supported by the test double; use the management API")
        return 1

    load_dotenv(os.path.join(os.getcwd(), ".env"))
    config_path = flags.get("config") or os.path.join(os.getcwd(), "config.yaml")

    try:
        text = read_config_file(config_path)
        cfg = parse_config_text(text)
    except ConfigError as exc:
        log("error", f"failed to load config: {exc}")
        return 0

    secret = cfg["remote-management"]["secret-key"]
    if secret and not looks_like_bcrypt(secret):
        hashed = hash_secret(secret)
        cfg["remote-management"]["secret-key"] = hashed
        raw_rm = cfg["raw"].get("remote-management")
        if isinstance(raw_rm, dict):
            raw_rm["secret-key"] = hashed
        if persist_hashed_secret(config_path, secret, hashed):
            try:
                text = read_config_file(config_path)
            except ConfigError:
                pass

    log("info", f"CLIProxyAPI Version: {VERSION}, Commit: {COMMIT}, BuiltAt: {BUILD_DATE}")
    state = State(config_path, cfg, text)
    try:
        ensure_auth_dir(state.auth_dir)
    except OSError as exc:
        log("error", f"failed to resolve auth directory: {exc}")
        return 0
    state.rescan_accounts()
    watcher = threading.Thread(target=state.watch_loop, name="watcher", daemon=True)
    watcher.start()

    delay = _env_float("CLIPROXY_DOUBLE_START_DELAY", 0.0)
    if delay > 0 and stop.wait(delay):
        log("info", "received shutdown signal before the server started")
        state.stop.set()
        return 0

    host, port = cfg["host"], cfg["port"]
    log("info", f"API server started successfully on: {host}:{port}")
    try:
        server = make_server(host, port, state)
    except RuntimeError as exc:
        log("error", f"failed to start HTTP server: {exc}")
        state.stop.set()
        return 0
    actual_host, actual_port = server.server_address[:2]
    log("info", f"double: listening on {go_listen_addr(actual_host, actual_port)}")
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True)
    serve.start()
    while not stop.wait(0.5):
        pass
    log("info", "received shutdown signal, shutting down")
    state.stop.set()
    server.shutdown()
    server.server_close()
    log("info", "server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
