"""Typos in pass-through settings: keys the pinned LiteLLM and CLIProxyAPI do not know.

`litellm_settings: {num_retrys: 2}` used to pass as "config OK" and do nothing. The keys each
section accepts come from tasks/config/passthrough_keys.json, generated from the installed LiteLLM
and the pinned CLIProxyAPI source by tools/passthrough_keys.py (so `check` never imports LiteLLM).
A key newer than that list is accepted once named in `unchecked_settings` (e.g.
`litellm_settings.some_new_flag`): the documented escape hatch.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Iterator

from .schema import Problem, dotted

DATA = Path(__file__).resolve().parent / "passthrough_keys.json"
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
    """The generated data; each section's keys as a frozenset."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return {k: frozenset(v) if isinstance(v, list) else v for k, v in data.items()}


def unknown_settings(base: dict) -> Iterator[Problem]:
    """Problems for every unknown key in the sections, the profiles' included (base: validated).

    A generator: the caller's problem cap stops it, so 10,000 typos cost no more than 50.
    """
    known = known_keys()
    unchecked = set(base.get(ESCAPE_KEY) or [])
    for i, entry in enumerate(base.get(ESCAPE_KEY) or []):
        if not any(entry.startswith(dotted(p) + ".") for p in SECTIONS):
            yield Problem((ESCAPE_KEY, i), f"names no pass-through section (use one of: "
                                           f"{', '.join(dotted(p) for p in SECTIONS)}, then .<key>)")
    places = [(p, p, _get(base, p)) for p in SECTIONS]
    for name, profile in (base.get("profiles") or {}).items():
        places += [(("profiles", name, s), (s,), profile.get(s)) for s in PROFILE_SECTIONS]
    for path, section, values in places:
        for key in values or {}:
            if key not in known[SECTIONS[section]] and f"{dotted(section)}.{key}" not in unchecked:
                yield Problem(path + (key,), _message(section, str(key), known))


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
