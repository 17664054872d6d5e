"""`doit keys [create|list|revoke|rotate] [NAME] [options]`: member keys for a team (issue 30).

A key is printed once, by `create` and `rotate`; `.router/keys.sqlite3` keeps its hash (tasks.keys).
Options may stand anywhere on the line (tasks.graph.posargs); `--models` may be given more than
once, or with commas.
"""

from __future__ import annotations

from .common import JSON_FLAG, PATHS, command, flag, option

VERBS = ("create", "list", "revoke", "rotate")
KEYS_PARAMS = [
    option("budget", "USD per period: over it, 429 until the period resets (0: none)", float, 0.0),
    option("period", "the budget's period: day, week or month (default month)"),
    option("rpm", "requests per minute (0: no limit)", int, 0),
    option("tpm", "tokens per minute, in and out (0: no limit)", int, 0),
    option("models", "a model pattern the key may use (fnmatch: gpt-5*); repeat or use commas; none: every model",
           list, []),
    option("expires", "refused from this date (YYYY-MM-DD: the end of that day, UTC) or ISO date-time"),
    flag("keep", "create/rotate: keep a private copy in .router/secrets/members/ for `integrate:<client> --key NAME`"),
    JSON_FLAG,
]


def keys(pos: list[str], budget: float, period: str, rpm: int, tpm: int, models: list, expires: str, keep: bool,
         json_output: bool) -> None:
    from ..base.errors import FlowgateError
    from ..base.terminal import printable

    verb, names = (pos[0], pos[1:]) if pos else ("list", [])
    if verb not in VERBS:
        raise FlowgateError(f"doit keys: unknown action {printable(verb)[:40]!r}", f"one of {', '.join(VERBS)}")
    if verb == "list":
        if names:
            raise FlowgateError("doit keys list takes no name")
        return _list(json_output)
    if len(names) != 1:
        raise FlowgateError(f"doit keys {verb} takes one name", f"e.g. `uv run doit keys {verb} ana`")
    from ..keys import manage
    from ..services.postgres import control_env

    name = manage.check_name(names[0])
    if keep and verb not in ("create", "rotate"):
        raise FlowgateError(f"--keep goes with create or rotate, not {verb}")
    store = control_env(PATHS)  # None: the SQLite file; else where PostgreSQL is (keys.store: postgres)
    if verb == "revoke":
        manage.revoke(PATHS, name, store)
        _say(json_output, {"name": name, "revoked": True}, f"revoked the key of {name}: every replica refuses it within a second")
        return
    if verb == "create":
        patterns = [p.strip() for value in models for p in value.split(",") if p.strip()]
        key = manage.create(PATHS, name, manage.parse_expiry(expires), store=store, keep=keep, budget=budget,
                            period=period, rpm=rpm, tpm=tpm, models=patterns)
    else:
        key = manage.rotate(PATHS, name, store, keep=keep)
    from ..keys import kept

    held = kept.is_kept(PATHS, name)
    where = (f"FlowGate keeps its hash, and a private copy for `integrate:<client> --key {name}` in "
             f"{kept.key_path(PATHS, name)}" if held else "FlowGate keeps only its hash")
    _say(json_output, {"name": name, "key": key, "kept": held},
         f"the key of {name} (shown once: {where}; the previous one, if any, is refused now):\n{key}")


def _say(json_output: bool, data: dict, text: str) -> None:
    import json

    print(json.dumps(data) if json_output else text)


def _list(json_output: bool) -> None:
    import json

    from ..keys import manage
    from ..services.postgres import control_env

    rows = manage.listing_with_spend(PATHS, control_env(PATHS))
    if json_output:
        print(json.dumps({"keys": rows}, indent=2))
        return
    if not rows:
        print("no member keys: `uv run doit keys create NAME` makes one (the master key stays the admin key)")
        return
    print(format_rows(rows))
    if rows[0]["spend_error"]:
        from ..base.terminal import printable

        print(f"spend unknown: {printable(rows[0]['spend_error'])}")


def format_rows(rows: list[dict]) -> str:
    import time

    from ..base.terminal import printable

    def day(value):
        return time.strftime("%Y-%m-%d", time.gmtime(value)) if value else "-"

    def spent(r):
        if r["spend_usd"] is None:
            return "?"
        text = f"${r['spend_usd']:.2f}"
        return text + (f" +{r['spend_unpriced_tokens']} tok" if r["spend_unpriced_tokens"] else "")

    head = ("NAME", "KEY", "STATE", "MODELS", "RPM", "TPM", "BUDGET", "SPENT", "LAST USE", "EXPIRES", "CREATED")
    table = [head] + [(
        printable(r["name"]), f"{r['shown']}…" + (" (kept)" if r.get("kept") else ""), r["state"], printable(",".join(r["models"])) or "*",
        str(r["rpm"] or "-"), str(r["tpm"] or "-"), f"${r['budget']:g}/{r['period']}" if r["budget"] else "-",
        spent(r), time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["last_use"])) if r["last_use"] else "-",
        day(r["expires"]), day(r["created"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def task_keys():
    """Member keys: `doit keys create NAME [--rpm N] [--models P]`, `list`, `revoke NAME`, `rotate NAME`."""
    from .posargs import with_options_anywhere

    return command(with_options_anywhere("keys", keys, KEYS_PARAMS), *KEYS_PARAMS, pos_arg="pos")
