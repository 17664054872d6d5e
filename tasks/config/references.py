"""What the config refers to outside itself: env vars (`api_key_env`) and key files
(`api_key_file`, `redis.password_file`). Checked with the config (`load_stack(references=True)`), so
every problem is reported at once with its file:line, and before anything is written."""

from __future__ import annotations

import os

from ..base.errors import FlowgateError
from ..base.paths import Paths
from .apikeys import reference_problems as api_key_problems
from .keyfiles import key_file_problem
from .schema import Problem


def reference_problems(paths: Paths, stack: dict, environ=None) -> list[Problem]:
    """Problems with what the config refers to outside itself (env vars, key files)."""
    env = os.environ if environ is None else environ
    out = []
    for i, model in enumerate(stack["models"]):
        if model["api_key_env"] and not env.get(model["api_key_env"]):
            out.append(Problem(("models", i, "api_key_env"),
                               f"environment variable {model['api_key_env']} is not set (model {model['name']!r})"))
        if model["api_key_file"]:
            problem = key_file_problem(paths.user_path(model["api_key_file"]))
            if problem:
                out.append(Problem(("models", i, "api_key_file"), f"{problem} (model {model['name']!r})"))
    if stack["cliproxy"]["enabled"]:
        out.extend(api_key_problems(paths, stack["cliproxy"], env))
    password_file = (stack.get("redis") or {}).get("password_file")
    if password_file:
        problem = key_file_problem(paths.user_path(password_file))
        if problem:
            out.append(Problem(("redis", "password_file"), problem))
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
