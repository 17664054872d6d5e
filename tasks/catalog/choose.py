"""The client slots' automatic choice (`auto`, the shipped default) from what is served.

- codex model: the newest general GPT served for Codex (owned_by openai): the highest version among
  `gpt-X.Y` and `gpt-X.Y-<variant>` ids that are not a mini/nano/spark variant (gpt-5.6-sol over
  gpt-5.5); on a tie the plain `gpt-X.Y`, then the first in Codex's own order (the `priority` of
  CLIProxyAPI's Codex catalog), then the newest;
- codex fast model: the highest-versioned `gpt-...-mini`;
- claude model: the highest-versioned Sonnet (`claude-sonnet-5` > `claude-sonnet-4-6` >
  `claude-sonnet-4-5-20250929`), else the highest Opus;
- claude fast model: the highest-versioned Haiku, else the claude model.
A slot set to an id is used as written. Resolved when `integrate:*` runs (which says what it chose
and why); `doit models` shows it. Claude Code's three picker slots (Opus, Sonnet, Haiku) each get the
newest of their family (`claude_families`).
"""

from __future__ import annotations

import re

from .store import Catalog, Served

AUTO = "auto"
_GPT = re.compile(r"^gpt-(\d+(?:\.\d+)*)(?:-([a-z0-9.-]+))?$")
_CLAUDE = re.compile(r"^claude-(sonnet|opus|haiku)-(\d+)(?:-(\d))?(?:-(\d{8}))?$")
_SMALL = ("mini", "nano", "spark")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _gpt(models: list[Served]) -> list[tuple[tuple, Served, str]]:
    out = []
    for m in models:
        match = _GPT.match(m.id)
        if match and m.owned_by == "openai":
            out.append((_version(match.group(1)), m, match.group(2) or ""))
    return out


def _claude(models: list[Served], family: str) -> list[tuple[tuple, Served]]:
    out = []
    for m in models:
        match = _CLAUDE.match(m.id)
        if match and match.group(1) == family:
            out.append(((int(match.group(2)), int(match.group(3) or 0), match.group(4) or ""), m))
    return out


def _best(candidates) -> str | None:
    return max(candidates, key=lambda c: (c[0], c[1].created, c[1].id))[1].id if candidates else None


def _general(models: list[Served]) -> list[tuple[tuple, Served, str]]:
    return [(v, m, variant) for v, m, variant in _gpt(models) if not any(s in variant for s in _SMALL)]


def _codex_order(candidate) -> tuple:
    version, m, variant = candidate
    return (version, not variant, -(m.rank if m.rank is not None else 1 << 30), m.created, m.id)


def codex(models: list[Served]) -> tuple[str | None, str | None]:
    general = _general(models)
    small = [(v, m) for v, m, variant in _gpt(models) if variant == "mini"]
    return (max(general, key=_codex_order)[1].id if general else None), _best(small)


def claude_families(models: list[Served]) -> dict[str, str | None]:
    """The newest served id of each Claude family: Claude Code's Opus, Sonnet and Haiku slots."""
    return {family: _best(_claude(models, family)) for family in ("opus", "sonnet", "haiku")}


def claude(models: list[Served]) -> tuple[str | None, str | None]:
    newest = claude_families(models)
    model = newest["sonnet"] or newest["opus"]
    return model, newest["haiku"] or model


def why(client: str, slot: str, models: list[Served], chosen: str) -> str:
    """Why the automatic choice for `client`'s `slot` is `chosen` (one phrase, for `integrate`)."""
    if client == "codex" and slot == "model":
        general = _general(models)
        top = max(c[0] for c in general)
        ties = [c[1].id for c in sorted(general, key=_codex_order, reverse=True) if c[0] == top]
        version = ".".join(map(str, top))
        if len(ties) == 1:
            return f"the newest general GPT served for Codex ({version})"
        return f"the newest general GPT served for Codex ({version}), first in Codex's own order of {', '.join(ties)}"
    if client == "codex":
        return "the newest gpt-…-mini served"
    family = chosen.split("-")[1] if chosen.startswith("claude-") else ""
    if slot == "model":
        return "the newest Sonnet served" if family == "sonnet" else "no Sonnet served: the newest Opus"
    return "the newest Haiku served" if family == "haiku" else "no Haiku served: the claude model"


RULES = {"codex": codex, "claude": claude}


def slots(stack: dict, catalog: Catalog | None, client: str) -> dict:
    """{'model', 'fast_model'}: each the configured id, or the automatic choice (None when nothing
    fits, or no catalog was read yet), and {'auto': [slots chosen automatically]}."""
    cfg = stack["clients"][client]
    auto_model, auto_fast = RULES[client](catalog.models if catalog else [])
    model = auto_model if cfg["model"] in (None, AUTO) else cfg["model"]
    fast = (auto_fast or model) if cfg["fast_model"] in (None, AUTO) else cfg["fast_model"]
    auto = [s for s in ("model", "fast_model") if cfg[s] in (None, AUTO)]
    return {"model": model, "fast_model": fast or model, "auto": auto}
