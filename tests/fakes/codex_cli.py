"""Codex CLI's own login file (`~/.codex/auth.json`, written by `codex login --device-auth`), for tests.

Tokens are unsigned JWTs with distinctive values, so a test can assert none of them leaks anywhere.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path


def jwt(claims: dict) -> str:
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.sig-{secrets.token_hex(8)}"


def auth_json(email: str = "dev@example.com", account_id: str = "acct-1", *, exp: int = 1900000000,
              last_refresh: str = "2026-05-01T10:00:00Z", account_id_top_level: bool = True) -> dict:
    tokens = {
        "id_token": jwt({"email": email, "exp": exp,
                         "https://api.openai.com/auth": {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus"}}),
        "access_token": jwt({"exp": exp, "scope": "openid", "nonce": f"ACCESS-{secrets.token_hex(6)}"}),
        "refresh_token": f"rt-REFRESH-{secrets.token_hex(12)}",
    }
    if account_id_top_level:
        tokens["account_id"] = account_id
    return {"OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": last_refresh}


def write_auth(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def token_values(data: dict) -> list[str]:
    """Every secret value in an auth.json or account file."""
    tokens = data.get("tokens", data)
    return [tokens[k] for k in ("id_token", "access_token", "refresh_token") if tokens.get(k)]
