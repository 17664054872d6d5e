"""Which routing profile is active, and the choice made with `doit profile NAME`.

The choice lives in `.router/profile.json`, not in config/: a `git pull` of the config files
never undoes it, and it overrides `profile:` there until `doit profile --clear`. Profiles
themselves are overlays defined in the config (tasks.config applies the active one).
"""

from __future__ import annotations

import contextlib
import json

from ..base.errors import FlowgateError
from ..base.fsutil import atomic_write, load_json
from ..base.paths import Paths

DEFAULT_DESCRIPTION = "the base settings of the config, no overlay"


def selected(paths: Paths) -> str | None:
    """The profile chosen with `doit profile NAME`, or None (then the config's `profile:` rules)."""
    try:
        data = load_json(paths.profile_choice)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise FlowgateError(f"{paths.profile_choice} is unreadable",
                            "choose again with `uv run doit profile NAME`, or `uv run doit profile --clear`") from None
    name = data.get("profile") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


def select(paths: Paths, name: str | None) -> None:
    """Persist `name` as the choice; None clears it (back to the config's `profile:`)."""
    if name is None:
        with contextlib.suppress(FileNotFoundError):
            paths.profile_choice.unlink()
        return
    atomic_write(paths.profile_choice, json.dumps({"profile": name}) + "\n")


def resolve(paths: Paths, configured: str, known: list[str]) -> tuple[str, str]:
    """(active profile, where it comes from: "selected" or "config")."""
    choice = selected(paths)
    if choice is None:
        return configured, "config"
    if choice not in known:
        raise FlowgateError(f"profile {choice!r}, selected with `doit profile`, is not in the config "
                            f"(known: {', '.join(known)})",
                            "choose another with `uv run doit profile NAME`, or `uv run doit profile --clear` "
                            "to use the config's `profile:`")
    return choice, "selected"


def listing(stack: dict) -> str:
    """`doit profile`: each profile with its description, the active one marked."""
    names = stack["profile_names"]
    descriptions = stack.get("profile_descriptions", {})
    width = max(len(n) for n in names)
    lines = []
    for name in names:
        mark = "*" if name == stack["profile"] else " "
        lines.append(f"{mark} {name:<{width}}  {descriptions.get(name) or ''}".rstrip())
    source = ("selected with `doit profile`; `doit profile --clear` returns to the config's"
              if stack.get("profile_source") == "selected" else "from `profile:` in the config")
    lines.append(f"active: {stack['profile']} ({source})")
    return "\n".join(lines)
