"""The client slots' automatic choice (`auto`, the shipped default) from what is served.

- codex model: the highest-versioned plain `gpt-X.Y` id served for Codex (owned_by openai), else
  the highest-versioned `gpt-` id that is not a mini/nano/spark variant (newest first on a tie);
- codex fast model: the highest-versioned `gpt-...-mini`;
- claude model: the highest-versioned Sonnet (`claude-sonnet-5` > `claude-sonnet-4-6` >
  `claude-sonnet-4-5-20250929`), else the highest Opus;
- claude fast model: the highest-versioned Haiku, else the claude model.
A slot set to an id is used as written. Resolved when `integrate:*` runs; `doit models` shows it.
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


def codex(models: list[Served]) -> tuple[str | None, str | None]:
    gpt = _gpt(models)
    plain = [(v, m) for v, m, variant in gpt if not variant]
    general = [(v, m) for v, m, variant in gpt if variant and not any(s in variant for s in _SMALL)]
    small = [(v, m) for v, m, variant in gpt if variant == "mini"]
    return _best(plain) or _best(general), _best(small)


def claude(models: list[Served]) -> tuple[str | None, str | None]:
    model = _best(_claude(models, "sonnet")) or _best(_claude(models, "opus"))
    return model, _best(_claude(models, "haiku")) or model


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
