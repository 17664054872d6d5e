"""The stack config: load config/flowgate.yaml (+ config/local.yaml), validate, apply the profile.

`load_stack(paths)` returns the effective config as plain JSON-able data (every default filled in,
the active profile merged over the base) or raises one FlowgateError listing every problem, each
naming file:line, the key path, what was expected and what was found. The schema it validates
against is tasks.config.stackspec.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from ..accounts.providers import configured_names
from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..release import lines
from .merge import deep_merge
from .passthrough import unknown_settings
from .profiles import DEFAULT_DESCRIPTION, resolve as resolve_profile
from .apikeys import shape_problems
from .references import reference_problems
from .schema import Problem, Problems, dotted
from .stackspec import MANAGED, PROFILE_KEYS, SCHEMA
from .teamspec import problems as team_problems


class _Sources:
    """Which file (and line) each key path came from, for messages."""

    def __init__(self):
        self.layers: list[dict] = []  # later layers win

    def add(self, marks: dict):
        self.layers.insert(0, marks)

    def later(self, path: tuple, other: tuple) -> bool:  # `path` set in a later file (local.yaml) than `other`
        rank = [next((i for i, marks in enumerate(self.layers) if p in marks), len(self.layers)) for p in (path, other)]
        return rank[0] < rank[1]

    def where(self, path: tuple) -> str:
        for p in (path[:n] for n in range(len(path), -1, -1)):
            for marks in self.layers:
                if p in marks:
                    file, line, _col = marks[p]
                    return f"{file}:{line}"
        return ""


def _rel(paths: Paths, path: Path) -> str:
    try:
        return str(path.relative_to(paths.home))
    except ValueError:
        return str(path)


def load_raw(paths: Paths, found: list[str] | None = None) -> tuple[dict, _Sources]:
    """Read and merge the config files (no validation beyond their top-level shape). Each layer's
    own problems go to `found` (file:line lines) when given, else they are raised."""
    from .yamlsource import load_yaml

    sources = _Sources()
    merged: dict = {}
    for path, required in ((paths.base_config, True), (paths.local_config, False)):
        if not required and not os.path.lexists(path):  # a dangling or looping link is an error below
            continue
        display = _rel(paths, path)
        data, marks = load_yaml(path, display)
        if data is None:
            if required:
                raise FlowgateError(f"{display} is empty: expected a mapping with at least a `models:` list",
                                    "restore it with `git checkout config/flowgate.yaml`")
            continue
        if not isinstance(data, dict):
            raise FlowgateError(f"{display}:1: expected a mapping at the top level, found a {type(data).__name__}",
                                "the file must consist of `key: value` lines")
        layer = _check_layer(data, display, marks)
        if found is None:
            _raise_lines(layer)
        found += [line for line in layer if line not in found]
        sources.add(marks)
        merged = deep_merge(merged, data)
    return merged, sources


def _check_layer(data: dict, display: str, marks: dict) -> list[str]:
    problems = Problems()
    with problems.collecting():
        SCHEMA.check(data, (), problems, partial=True)
    return _lines(problems, lambda p: f"{display}:{marks.get(p, marks.get(p[:-1], ('', '?', 0)))[1]}")


def _lines(problems: list[Problem], where) -> list[str]:
    found = []
    for prob in problems:
        line = f"{where(prob.path)}: {prob.dotted}: {prob.message}"
        if line not in found:
            found.append(line)
    return found


def _raise(problems: list[Problem], where, before: list[str] = ()) -> None:
    found = list(before) + [line for line in _lines(problems, where) if line not in before]
    _raise_lines(found, getattr(problems, "truncated", False))


def _raise_lines(found: list[str], truncated: bool = False) -> None:
    if not found:
        return
    noun = "problem" if len(found) == 1 else "problems"
    count = f"{len(found)} {noun}"
    if truncated:
        count = f"stopped after the first {len(found)} {noun}"
    raise FlowgateError(f"the config is invalid ({count})",
                        "fix the keys named above; `uv run doit check` re-checks without changing anything",
                        details=found)


def load_stack(paths: Paths, *, references: bool = False, environ=None) -> dict:
    """Load, validate and resolve the config; the active profile is applied. Writes nothing.

    Every problem at once, each with its file:line: the schema's, the cross-checks' (run on what the
    schema could read even when it found problems) and, with `references`, missing env vars and key
    files."""
    layers: list[str] = []  # each file's own problems, reported with the merged config's
    raw, sources = load_raw(paths, layers)
    problems, base = Problems(), None
    with problems.collecting():
        base = SCHEMA.check(raw, (), problems, partial=False)
    typed = not problems and not layers
    try:
        if problems.truncated or not isinstance(base, dict):
            raise ValueError("nothing the cross-checks can read")
        active, source = resolve_profile(paths, base["profile"], _profile_names(base))  # `doit profile NAME` wins
        with problems.collecting():
            _add_semantic_problems(base, active, problems)
            if references:
                problems.extend(reference_problems(paths, _apply_profile(base, base["profiles"].get(active) or {}),
                                                   environ))
    except (TypeError, KeyError, AttributeError, ValueError, FlowgateError):
        if typed:
            raise
        # a cross-check met a value the schema already refused: that problem is listed below
    problems[:] = [_where_set(p, sources) for p in problems]  # in place: keeps `truncated`
    _raise(problems, sources.where, layers)
    profiles, names = base["profiles"], _profile_names(base)
    stack = _apply_profile(base, profiles.get(active, {}))
    stack["profile"] = active
    stack["profile_source"] = source
    stack["profile_names"] = names
    stack["profile_descriptions"] = {n: profiles.get(n, {}).get("description") or (DEFAULT_DESCRIPTION if n == "default" else "")
                                     for n in names}
    stack["profile_models"] = {n: named_models(_apply_profile(base, profiles.get(n, {}))) for n in names}
    stack["provider_names"] = configured_names(stack)  # canonical: `login:<name>` tasks are listed from it
    stack["redis"]["host"] = "127.0.0.1"  # the managed Redis listens on loopback only
    stack["postgres"]["host"] = "127.0.0.1"  # so does the managed PostgreSQL
    return stack


def _profile_names(base: dict) -> list[str]:
    return ["default", *[p for p in base["profiles"] if p != "default"]]


def _add_semantic_problems(base: dict, active: str, problems: list[Problem]) -> None:
    """What a well-typed config can still get wrong: managed keys, unknown pass-through keys,
    the active profile, and the cross-checks of the base and every profile."""
    for path, why in MANAGED.items():
        if _get(base, path) is not None:
            problems.append(Problem(path, f"is managed by FlowGate ({why}); remove it"))
    for prob in unknown_settings(base):
        problems.append(prob)
    profiles = base["profiles"]
    if active != "default" and active not in profiles:
        known = ", ".join(["default", *profiles]) if profiles else "default"
        problems.append(Problem(("profile",), f"unknown profile {active!r} (known: {known})"))
    # Cross-check the base and every profile, so a broken profile is caught before anyone switches.
    checked: set[str] = set()
    for name in ["default", *profiles]:
        overlay = profiles.get(name, {})
        effective = _apply_profile(base, overlay)
        for prob in _cross_check(effective):
            in_overlay = prob.path and prob.path[0] in overlay and name in profiles
            path = ("profiles", name, *prob.path) if in_overlay else prob.path
            key = f"{dotted(path)}: {prob.message}"
            if key not in checked:
                checked.add(key)
                problems.append(Problem(path, prob.message))


def _apply_profile(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key in PROFILE_KEYS:
        if key in overlay and key != "description":
            merged[key] = deep_merge(base.get(key), overlay[key])
    merged.pop("profiles", None)
    return merged


def _cross_check(cfg: dict) -> list[Problem]:
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for i, model in enumerate(cfg["models"]):
        where = ("models", i)
        if model["name"] in names:
            problems.append(Problem(where + ("name",), f"duplicate model name {model['name']!r} (also models[{names[model['name']]}])"))
        names.setdefault(model["name"], i)
        if model["via"] == "direct" and not model["model"]:
            problems.append(Problem(where + ("model",), "missing: a direct model needs `model: <provider>/<model id>` (e.g. openai/gpt-4o)"))
        if model["via"] == "cliproxy":
            if not cfg["cliproxy"]["enabled"]:
                problems.append(Problem(where + ("via",), "routes through cliproxy, but cliproxy.enabled is false"))
            for key in ("api_base", "api_key_env", "api_key_file"):
                if model[key]:
                    problems.append(Problem(where + (key,), "not allowed with via: cliproxy (FlowGate fills in the URL and key); use via: direct"))
        if model["via"] == "direct" and model["protocol"]:
            problems.append(Problem(where + ("protocol",), "only for via: cliproxy; a direct model's protocol is the provider prefix of `model`"))
        if model["api_key_env"] and model["api_key_file"]:
            problems.append(Problem(where + ("api_key_file",), "give either api_key_env or api_key_file, not both"))
    if not cfg["models"] and not cfg["cliproxy"]["enabled"]:
        problems.append(Problem(("models",), "is empty and cliproxy.enabled is false: nothing would serve a request "
                                             "(list a `via: direct` model, or enable cliproxy)"))
    # Fallbacks and client slots may name any id: the catalog's pattern routes serve what the accounts
    # serve, which only the running binary knows (`doit check` / `status` warn about unserved ones).
    services = [("litellm", cfg["litellm"])] + ([("cliproxy", cfg["cliproxy"])] if cfg["cliproxy"]["enabled"] else [])
    for name, svc in services:
        if not svc["allow_remote"] and not is_loopback(svc["host"]):
            problems.append(Problem((name, "host"), f"{svc['host']!r} is not a loopback address; set {name}.allow_remote: true to expose the service beyond this machine"))
    from ..gateway.handoff import LEAN_UPSTREAM_ENV

    if LEAN_UPSTREAM_ENV in cfg["litellm"]["env"]:  # the launch's own: a copy here would decide silently
        problems.append(Problem(("litellm", "env", LEAN_UPSTREAM_ENV), "is FlowGate's own (where the lean path "
                                "forwards); to turn the lean path off set litellm.lean_path: false"))
    if cfg["cliproxy"]["enabled"] and cfg["litellm"]["port"] == cfg["cliproxy"]["port"]:
        problems.append(Problem(("cliproxy", "port"), f"is the same as litellm.port ({cfg['litellm']['port']}); the two services need different ports"))
    return problems + shape_problems(cfg["cliproxy"]) + team_problems(cfg)


def _where_set(problem: Problem, sources: _Sources) -> Problem:
    """Two services on one port: named at the port the user set last, not at the shipped one."""
    if problem.path == ("cliproxy", "port") and problem.message.startswith("is the same as litellm.port") \
            and sources.later(("litellm", "port"), ("cliproxy", "port")):
        return Problem(("litellm", "port"), problem.message.replace("litellm.port", "cliproxy.port", 1))
    return problem


def named_models(cfg: dict) -> list[str]:
    """The model ids a (profile-applied) config's fallbacks name, in order (`doit models`, warnings)."""
    out: list[str] = []
    for section in ("litellm_settings", "router_settings"):
        for key in ("fallbacks", "context_window_fallbacks"):
            for entry in cfg[section].get(key) or []:
                for primary, targets in (entry.items() if isinstance(entry, dict) else ()):
                    for name in [primary, *(targets if isinstance(targets, list) else [])]:
                        if isinstance(name, str) and name not in out:
                            out.append(name)
    return out


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _get(data, path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data
