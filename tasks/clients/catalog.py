"""`doit models`: every name a client may send, with its route and the dated-id routes that serve
Claude Code's snapshot ids (the same data the LiteLLM config is rendered from)."""

from __future__ import annotations

from ..services import dated_alias, protocol, upstream_id


def entries(stack: dict) -> list[dict]:
    users: dict[str, list[str]] = {}
    for client, cfg in stack["clients"].items():
        for slot in ("model", "fast_model"):
            if cfg[slot]:
                users.setdefault(cfg[slot], []).append(f"{client} {slot.replace('_', ' ')}")
    out = []
    for m in stack["models"]:
        cliproxy = m["via"] == "cliproxy"
        out.append({
            "name": m["name"],
            "via": m["via"],
            "protocol": protocol(m) if cliproxy else m["model"].split("/", 1)[0],
            "upstream": upstream_id(m) if cliproxy else m["model"],
            "aliases": [a for a in [dated_alias(m)] if a],
            "used_by": users.get(m["name"], []),
        })
    return out


def table(stack: dict) -> str:
    rows = [["model", "via", "protocol", "upstream", "used by"]]
    aliases = []
    for e in entries(stack):
        rows.append([e["name"], e["via"], e["protocol"], e["upstream"], ", ".join(e["used_by"]) or "-"])
        aliases += [(a, e["name"]) for a in e["aliases"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if aliases:
        lines.append("")
        lines.append("dated ids (what Claude Code asks for, e.g. claude-haiku-4-5-20251001) are served too:")
        lines += [f"  {pattern:<28} -> {name}" for pattern, name in aliases]
    lines.append(f"profile: {stack['profile']}")
    return "\n".join(lines)
