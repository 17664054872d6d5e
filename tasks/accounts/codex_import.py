"""`doit import:codex`: Codex CLI's own login (`$CODEX_HOME/auth.json`) as a codex account file.

A machine where `codex login --device-auth` already ran needs no browser at all. The file gets the
binary's own field names and naming (`codex-<email>.json`); an account that already has a file
(found by type and email, whatever its name: mainline adds a hash and the plan) is updated in place.
Written atomically and 0600 from the first byte; the running binary picks it up by its auth-dir watch.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, atomic_write, ensure_dir, read_small
from ..base.paths import Paths
from ..stack import events

ACCOUNT_TYPE = "codex"
OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"  # where the id_token keeps chatgpt_account_id
RELOGIN = "run `codex login --device-auth` again, then import"
AUTH_LIMIT = 1 << 20  # a login file is a few KiB; a larger one is not read whole


@dataclass
class CodexLogin:
    email: str
    account_id: str
    id_token: str
    access_token: str
    refresh_token: str
    last_refresh: str
    expired: str


@dataclass
class ImportResult:
    action: str  # imported | updated | up-to-date
    file: Path
    email: str
    why: str = ""


def codex_auth_path(file: str | None = None, environ=None) -> Path:
    env = os.environ if environ is None else environ
    if file:
        return Path(os.path.expanduser(file))
    home = env.get("CODEX_HOME") or "~/.codex"
    return Path(os.path.expanduser(home)) / "auth.json"


def read_codex_login(path: Path) -> CodexLogin:
    """Parse and check auth.json: a clear error naming what is missing, before anything is written."""
    from ..base.fsutil import read_foreign

    raw = read_foreign(path, AUTH_LIMIT, "name Codex CLI's auth.json: `--file PATH`")
    if raw is None:
        raise FlowgateError(f"{path} does not exist",
                            "log in with `codex login --device-auth` first, or name the file: `--file PATH`")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FlowgateError(f"cannot read {path}: {exc}") from None
    except ValueError as exc:
        raise FlowgateError(f"{path} is not valid JSON ({exc})", RELOGIN) from None
    except RecursionError:
        raise FlowgateError(f"{path} is not a Codex CLI login (nested too deeply)", RELOGIN) from None
    if not isinstance(data, dict):
        raise FlowgateError(f"{path} is not a Codex CLI login (expected a JSON object)", RELOGIN)
    tokens = data.get("tokens")
    if not isinstance(tokens, dict):
        why = " (it holds an API key login, not a ChatGPT login)" if data.get("OPENAI_API_KEY") else ""
        raise FlowgateError(f"{path} has no `tokens` field{why}", RELOGIN)
    for field in ("id_token", "access_token", "refresh_token"):
        if not isinstance(tokens.get(field), str) or not tokens[field].strip():
            raise FlowgateError(f"{path} has no `tokens.{field}` field", RELOGIN)
    claims = jwt_claims(tokens["id_token"])
    if claims is None:
        raise FlowgateError(f"{path}: `tokens.id_token` is not a JWT", RELOGIN)
    email = _first_str(data.get("email"), tokens.get("email"), claims.get("email"))
    if not email:
        raise FlowgateError(f"{path} names no email (no `email` field, none in the id_token's claims)", RELOGIN)
    auth_claim = claims.get(OPENAI_AUTH_CLAIM) if isinstance(claims.get(OPENAI_AUTH_CLAIM), dict) else {}
    account_id = _first_str(tokens.get("account_id"), auth_claim.get("chatgpt_account_id"))
    if not account_id:
        raise FlowgateError(f"{path} has no `tokens.account_id` field (and none in the id_token's claims)", RELOGIN)
    expiry = _first_exp(tokens["access_token"], tokens["id_token"])
    return CodexLogin(email=email, account_id=account_id, id_token=tokens["id_token"],
                      access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                      last_refresh=_first_str(data.get("last_refresh")) or "", expired=expiry)


def jwt_claims(token: str) -> dict | None:
    """The payload of a JWT, unverified (only read for names, never trusted for access)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _first_str(*values) -> str:
    return next((v.strip() for v in values if isinstance(v, str) and v.strip()), "")


def _first_exp(*tokens: str) -> str:
    for token in tokens:
        exp = (jwt_claims(token) or {}).get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            return datetime.fromtimestamp(exp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ""


def account_data(login: CodexLogin) -> dict:
    """The binary's codex account file fields."""
    data = {"type": ACCOUNT_TYPE, "id_token": login.id_token, "access_token": login.access_token,
            "refresh_token": login.refresh_token, "account_id": login.account_id, "email": login.email,
            "last_refresh": login.last_refresh, "expired": login.expired}
    return {k: v for k, v in data.items() if v != ""}


def file_name(email: str) -> str:
    return f"codex-{re.sub(r'[^A-Za-z0-9@._+-]', '_', email)}.json"


def existing_account(auths_dir: Path, email: str) -> tuple[Path, dict] | None:
    """The codex account file of `email`, whatever its name."""
    if not auths_dir.is_dir():
        return None
    for path in sorted(auths_dir.glob("*.json")):
        if path.name.startswith("."):
            continue
        raw = read_small(path, AUTH_LIMIT)  # regular files only: the auth dir is the binary's too
        try:
            data = json.loads(raw) if raw is not None else None
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and data.get("type") == ACCOUNT_TYPE and str(data.get("email", "")).lower() == email.lower():
            return path, data
    return None


def import_codex(paths: Paths, file: str | None = None, environ=None) -> ImportResult:
    source = codex_auth_path(file, environ)
    login = read_codex_login(source)
    fresh = account_data(login)
    found = existing_account(paths.auths_dir, login.email)
    target, old = found if found else (paths.auths_dir / file_name(login.email), None)
    merged = {**(old or {}), **fresh}  # keep what the binary added (disabled, plan, ...)
    why = ""
    if old is not None and _newer(old.get("last_refresh"), login.last_refresh):
        # The binary refreshed the tokens since: the older ones in auth.json may be revoked already.
        action, why = "up-to-date", f"the account file was refreshed later ({old['last_refresh']}) than {source}"
    elif merged == old:
        action = "up-to-date"
    else:
        ensure_dir(paths.auths_dir, PRIVATE_DIR_MODE)
        atomic_write(target, json.dumps(merged, indent=2) + "\n", mode=PRIVATE_FILE_MODE)
        action = "imported" if old is None else "updated"
    events.record(paths, "import", "cliproxy", action, login.email, provider="codex", file=target.name)
    return ImportResult(action, target, login.email, why)


def _newer(left, right) -> bool:
    a, b = _parse_time(left), _parse_time(right)
    return a is not None and b is not None and a > b


def _parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
