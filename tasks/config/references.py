"""What the config refers to outside itself: env vars (`api_key_env`, `postgres.url_env`) and key
files (`api_key_file`, `redis.password_file`, `postgres.url_file`). Checked with the config (`load_stack(references=True)`), so
every problem is reported at once with its file:line, and before anything is written."""

from __future__ import annotations

import os

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .keyfiles import key_file_problem
from .schema import Problem


def reference_problems(paths: Paths, stack: dict, environ=None) -> list[Problem]:
    """Problems with what the config refers to outside itself (env vars, key files)."""
    env = os.environ if environ is None else environ
    out: list[Problem] = []
    for i, model in enumerate(stack["models"]):
        out += key_source_problems(paths, env, ("models", i), model, "api_key_env", "api_key_file",
                                   f" (model {model['name']!r})")
    if stack["cliproxy"]["enabled"]:
        for i, entry in enumerate(stack["cliproxy"].get("api_keys") or []):
            out += key_source_problems(paths, env, ("cliproxy", "api_keys", i), entry, "key_env", "key_file")
    out += key_source_problems(paths, env, ("redis",), stack.get("redis") or {}, None, "password_file")
    if ((stack.get("keys") or {}).get("store")) == "postgres":  # the member keys' PostgreSQL, when one you run
        out += key_source_problems(paths, env, ("postgres",), stack.get("postgres") or {}, "url_env", "url_file",
                                   " (the member keys' store)")
    return out


def key_source_problems(paths: Paths, env, where: tuple, section: dict, env_key: str | None, file_key: str,
                        about: str = "") -> list[Problem]:
    """A secret the config names by an environment variable (`env_key`) or a one-line file (`file_key`):
    the variable set, the file usable (tasks.config.keyfiles)."""
    out = []
    if env_key and section.get(env_key) and not env.get(section[env_key]):
        out.append(Problem(where + (env_key,), f"environment variable {section[env_key]} is not set{about}"))
    if section.get(file_key):
        problem = key_file_problem(paths.user_path(section[file_key]))
        if problem:
            out.append(Problem(where + (file_key,), f"{problem}{about}"))
    return out


def check_references(paths: Paths, stack: dict, environ=None) -> list[str]:
    """The same, as lines (`models[0].api_key_env: ...`)."""
    return [f"{p.dotted}: {p.message}" for p in reference_problems(paths, stack, environ)]


def require_references(paths: Paths, stack: dict, environ=None) -> None:
    problems = check_references(paths, stack, environ)
    if problems:
        raise FlowgateError(f"the config refers to {len(problems)} missing secret(s)",
                            "export the variable or create the file, then run the command again",
                            details=problems)
