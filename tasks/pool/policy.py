"""Who goes out of rotation, who comes back, and which models have no account left. Pure: the
accounts as the binary lists them, their windows, the threshold and what the steward did before in;
a Decision out. The steward acts on it (tasks.pool.steward).

What "ours" means: an account the steward disabled itself. The binary's listing cannot tell that
disable from the user's own (both are `disabled: true`), so the steward remembers its own in its
state file, and `doit accounts --disable/--enable` leave a mark for it (tasks.pool.state.note_user).
A disabled account that is not ours is the user's: it is never enabled. An account of ours that
someone enabled again is left in rotation until the reset it was out for (the user's override).
"""

from __future__ import annotations

from collections import namedtuple

IN, OUT, USER, UNKNOWN = "in", "out", "disabled-by-user", "unknown"


class Memory(namedtuple("Memory", "ours overrides user_disabled")):
    """ours: {name: {"until": epoch|None, "reason": str}}: accounts the steward took out;
    overrides: {name: epoch|None}: accounts of ours the user put back, left in until then;
    user_disabled: names the user disabled through FlowGate (never touched)."""

    __slots__ = ()


EMPTY = Memory({}, {}, frozenset())


class Verdict(namedtuple("Verdict", "state reason until")):
    __slots__ = ()


class Decision(namedtuple("Decision", "take_out put_back verdicts memory")):
    """take_out / put_back: [(account, reason, until)]; verdicts: {name: Verdict}; memory: the next Memory."""

    __slots__ = ()


def over(windows, threshold: float) -> list:
    """The windows at or past the threshold, fullest first."""
    return sorted((w for w in windows if w.used_percent >= threshold), key=lambda w: -w.used_percent)


def reason_for(windows, threshold: float) -> str:
    return "; ".join(f"{w.name} window {w.used_percent:g} % >= {threshold:g} %" for w in windows)


def _until(windows) -> float | None:
    """When every window past the threshold has reset: the latest of their resets (None: unknown)."""
    resets = [w.resets_at for w in windows]
    return None if not resets or any(r is None for r in resets) else max(resets)


def decide(accounts, windows: dict, memory: Memory, threshold: float, now: float, steering: bool = True) -> Decision:
    """`accounts`: tasks.accounts.inventory.Account; `windows`: {name: [Window]} (fresh or last known;
    an account without an entry has none known)."""
    ours = dict(memory.ours)
    overrides = {k: v for k, v in memory.overrides.items() if v is None or v > now}
    user = set(memory.user_disabled)
    take_out, put_back, verdicts = [], [], {}
    listed = {a.name for a in accounts}
    for account in accounts:
        name = account.name
        if account.source != "oauth":
            verdicts[name] = Verdict(IN if not account.unavailable else UNKNOWN, account.status_message, None)
            continue
        mine = ours.get(name)
        if account.disabled and (mine is None or name in user):
            ours.pop(name, None)
            verdicts[name] = Verdict(USER, "disabled by you", None)
            continue
        known = windows.get(name) or []
        full = over(known, threshold)
        if account.disabled:  # ours
            reset_passed = mine.get("until") is not None and now >= mine["until"]
            if not steering or reset_passed or (known and not full):
                why = ("steering is off" if not steering else "its window reset" if reset_passed
                       else "its windows are below the threshold again")
                put_back.append((account, why, None))
                ours.pop(name)
                verdicts[name] = Verdict(IN, why, None)
            else:
                verdicts[name] = Verdict(OUT, mine.get("reason") or "", mine.get("until"))
            continue
        if mine is not None:  # enabled again while ours: the user's override until its reset
            ours.pop(name)
            overrides[name] = mine.get("until")
        if name in overrides:
            verdicts[name] = Verdict(IN, "put back by you", overrides[name])
            continue
        if steering and full:
            why, until = reason_for(full, threshold), _until(full)
            take_out.append((account, why, until))
            ours[name] = {"until": until, "reason": why}
            verdicts[name] = Verdict(OUT, why, until)
            continue
        verdicts[name] = Verdict(UNKNOWN if account.unavailable else IN, account.status_message if account.unavailable
                                 else "", None)
    ours = {k: v for k, v in ours.items() if k in listed}  # a removed account is forgotten
    return Decision(take_out, put_back, verdicts, Memory(ours, overrides, frozenset(user & listed)))


def steered(accounts, verdicts: dict, models_of: dict, fallbacks: dict) -> dict:
    """{model: {"provider", "resets_at", "fallback"}} for every provider with accounts, none of them in
    rotation, and at least one out by the steward. `models_of`: {provider: [model ids]};
    `fallbacks`: {model: [model ids]} of the active profile; a model's fallback is the first of its
    chain that is not steered itself."""
    by_provider: dict[str, list] = {}
    for account in accounts:
        by_provider.setdefault(account.provider, []).append(verdicts.get(account.name))
    out = {}
    for provider, seen in by_provider.items():
        states = [v.state for v in seen if v is not None]
        if not states or any(s in (IN, UNKNOWN) for s in states) or OUT not in states:
            continue
        resets = [v.until for v in seen if v is not None and v.state == OUT and v.until is not None]
        for model in models_of.get(provider) or []:
            out[model] = {"provider": provider, "resets_at": min(resets) if resets else None, "fallback": None}
    for model, entry in out.items():
        entry["fallback"] = next((f for f in fallbacks.get(model) or [] if f not in out and f != model), None)
    return out


def fallback_map(stack: dict | None) -> dict:
    """{model: [fallbacks]} from the active profile's router_settings.fallbacks (stack.json has it applied)."""
    chains = (((stack or {}).get("router_settings") or {}).get("fallbacks")) or []
    out: dict[str, list] = {}
    for entry in chains if isinstance(chains, list) else []:
        if isinstance(entry, dict):
            for model, chain in entry.items():
                if isinstance(chain, list):
                    out.setdefault(str(model), []).extend(str(c) for c in chain if isinstance(c, str))
    return out
