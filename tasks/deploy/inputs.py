"""What an export reads from outside .router/: cheap to compute (doit's task loading calls it)."""

from __future__ import annotations

from ..base.paths import Paths

_SECRET_KEYS = ("dsn", "access_key", "secret_key")  # cliproxy.store keys given as <key>_env / <key>_file


def env_names(stack: dict) -> list[str]:
    """The local environment variables an export reads (their values decide whether it is current)."""
    names = [m["api_key_env"] for m in stack["models"] if m.get("api_key_env")]
    names.append(stack.get("redis", {}).get("password_env"))
    store = stack["cliproxy"].get("store") or {}
    names += [store.get(f"{key}_env") for key in _SECRET_KEYS]
    return sorted({n for n in names if n})


def input_files(paths: Paths, stack: dict) -> list[str]:
    """Files outside .router/ whose content an export copies (key files): doit file dependencies."""
    files = [m["api_key_file"] for m in stack["models"] if m.get("api_key_file")]
    files.append(stack.get("redis", {}).get("password_file"))
    store = stack["cliproxy"].get("store") or {}
    files += [store.get(f"{key}_file") for key in _SECRET_KEYS]
    return [str(paths.user_path(f)) for f in files if f]
