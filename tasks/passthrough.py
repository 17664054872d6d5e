"""Typos in pass-through settings: keys the pinned LiteLLM and CLIProxyAPI do not know.

`litellm_settings: {num_retrys: 2}` used to pass as "config OK" and do nothing. The keys each
section accepts come from tasks/data/passthrough_keys.json, generated from the installed LiteLLM
and the pinned CLIProxyAPI source by tools/passthrough_keys.py (so `check` never imports LiteLLM).
A key newer than that list is accepted once named in `unchecked_settings` (e.g.
`litellm_settings.some_new_flag`): the documented escape hatch.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path

from .schema import Problem, dotted

DATA = Path(__file__).resolve().parent / "data" / "passthrough_keys.json"
ESCAPE_KEY = "unchecked_settings"
# config path of a section -> its list in the data file
SECTIONS = {
    ("litellm_settings",): "litellm_settings",
    ("router_settings",): "router_settings",
    ("general_settings",): "general_settings",
    ("cliproxy", "settings"): "cliproxy_settings",
}
PROFILE_SECTIONS = ("litellm_settings", "router_settings", "general_settings")


@functools.lru_cache(maxsize=1)
def known_keys() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def unknown_settings(base: dict) -> list[Problem]:
    """Problems for every unknown key in the sections, the profiles' included (base: validated)."""
    known = known_keys()
    unchecked = set(base.get(ESCAPE_KEY) or [])
    problems = [Problem((ESCAPE_KEY, i), f"names no pass-through section (use one of: "
                                         f"{', '.join(dotted(p) for p in SECTIONS)}, then .<key>)")
                for i, entry in enumerate(base.get(ESCAPE_KEY) or [])
                if not any(entry.startswith(dotted(p) + ".") for p in SECTIONS)]
    places = [(p, p, _get(base, p)) for p in SECTIONS]
    for name, profile in (base.get("profiles") or {}).items():
        places += [(("profiles", name, s), (s,), profile.get(s)) for s in PROFILE_SECTIONS]
    for path, section, values in places:
        for key in values or {}:
            if key in known[SECTIONS[section]] or f"{dotted(section)}.{key}" in unchecked:
                continue
            problems.append(Problem(path + (key,), _message(section, str(key), known)))
    return problems


def _message(section: tuple, key: str, known: dict) -> str:
    words = known[SECTIONS[section]]
    near = difflib.get_close_matches(key, words, n=1, cutoff=0.75)
    hint = f"did you mean '{near[0]}'? " if near else ""
    source = (f"CLIProxyAPI {known.get('cliproxy_release')}" if section == ("cliproxy", "settings")
              else f"LiteLLM {known['litellm_version']}")
    return (f"unknown key: {source} does not accept it ({hint}if it is newer than FlowGate's list, "
            f"add {dotted(section)}.{key} to {ESCAPE_KEY})")


def _get(data: dict, path: tuple):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data
