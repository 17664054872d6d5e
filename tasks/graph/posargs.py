"""Options anywhere on the command line of a task that takes positional words.

doit reads a task's options with getopt, which stops at the first positional word and hands the
rest to `pos_arg` unparsed: `doit logs litellm -n 5` would see `-n` as a service name. The action
parses what doit left over again, with doit's own option parser, so options may come before,
between or after the positional words.
"""

from __future__ import annotations

import functools
import re

from ..base.errors import FlowgateError


def options_anywhere(task: str, words: list[str], params: list[dict]) -> tuple[list[str], dict]:
    """Split `words` into positional words and the values of the options found among them."""
    from doit.cmdparse import CmdOption, CmdParseError, TaskParse

    parser = TaskParse([CmdOption(p) for p in params])
    # a list option (`--models a --models b`) collects every occurrence, wherever it stands
    positional, found, rest = [], {p["name"]: [] for p in params if p.get("type") is list}, list(words)
    while rest:
        if rest[0] == "--":  # everything after `--` is positional
            positional += rest[1:]
            break
        try:
            values, rest = parser.parse_only(rest, found)
        except CmdParseError as exc:
            raise FlowgateError(f"doit {task}: {_reason(exc, params)}", f"`uv run doit help {task}` lists its options") from None
        found.update(values)
        if rest:
            positional.append(rest.pop(0))
    return positional, found


def with_options_anywhere(task: str, fn, params: list[dict]):
    """Wrap an action taking `pos` (and the params' names) so options after a positional word count."""

    @functools.wraps(fn)  # doit passes arguments by the wrapped function's signature
    def run(pos, **kwargs):
        pos, found = options_anywhere(task, list(pos or []), params)
        merged = {**kwargs, **{k: (kwargs.get(k) or []) + v if isinstance(v, list) else v for k, v in found.items()}}
        return fn(pos, **merged)

    return run


def _reason(exc: Exception, params=()) -> str:
    """doit's parse errors, without the dump of its option table (a bad value named by its option
    as the user wrote it, when `params` are given)."""
    text = str(exc)
    unknown = re.search(r"Error parsing Task: (.*?) \(parsing options", text, re.S)
    if unknown:
        return unknown.group(1)
    bad_value = re.search(r"Error parsing parameter '(.*?)' <class '(\w+)'>\.\n(.*)", text)
    if bad_value:
        name, kind, why = bad_value.group(1), bad_value.group(2), bad_value.group(3).strip()
        longs = [f"--{p['long']}" for p in params if p.get("name") == name and p.get("long")]
        given = re.search(r": ('.*')$", why)  # Python's "invalid literal for int() with base 10: 'abc'"
        what = "a number" if kind in ("int", "float") else kind
        return (f"option {longs[0] if longs else name} takes {what}"
                + (f", not {given.group(1)}" if given and kind in ("int", "float") else f": {why}"))
    return text.splitlines()[0] if text else "cannot read the options"
