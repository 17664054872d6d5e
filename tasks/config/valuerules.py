"""What a config value may be, whatever its key.

`check` must refuse what `up` cannot use: an environment variable name with `=`, a NUL byte
(subprocess and file paths reject it), a YAML date (JSON cannot hold it), `.nan` / `.inf` (a
timeout that never expires), a string of 50 MB. Names that reach rendered files and the terminal
(models, profiles, providers) get a strict character set, so they can never carry a newline or an
escape sequence.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass

MAX_TEXT = 64 * 1024  # characters in one string value
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # every control character but tab
_NUL = "\x00"


@dataclass(frozen=True)
class NameRule:
    pattern: re.Pattern
    what: str  # "a model name (letters, digits and ...)"

    def ok(self, value: object) -> bool:
        return isinstance(value, str) and bool(self.pattern.fullmatch(value))


MODEL_NAME = NameRule(re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}"),
                      "a model name (letters, digits and . _ : / @ + -, starting with a letter or digit, at most 128)")
PROFILE_NAME = NameRule(re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"),
                        "a profile name (letters, digits, _ and -, starting with a letter or digit, at most 64)")
PROVIDER_NAME = NameRule(re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"),
                         "a provider name (letters, digits, _ and -, at most 64)")
ENV_NAME = NameRule(re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}"),
                    "an environment variable name (letters, digits and _, not starting with a digit)")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why a string cannot be used, or None. `multiline` allows newlines (free pass-through values)."""
    if len(value) > MAX_TEXT:
        return f"is {len(value):,} characters long (at most {MAX_TEXT:,})"
    if _NUL in value:
        return "contains a NUL character (\\x00)"
    if not multiline and (found := _CONTROL.search(value)):
        return f"contains a control character ({found.group()!r}); write it on one line, without escapes"
    return None


def number_problem(value: object) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value!r}: numbers must be finite"
    return None


def foreign_type(value: object) -> str | None:
    """What a YAML value that JSON (and the services) cannot hold is, in words; None when plain."""
    if isinstance(value, datetime.datetime):
        return f"a YAML timestamp ({value.isoformat()}); quote it to pass it as text"
    if isinstance(value, datetime.date):
        return f"a YAML date ({value.isoformat()}); quote it ('{value.isoformat()}') to pass it as text"
    if isinstance(value, bytes):
        return "YAML binary data (!!binary); not supported"
    if isinstance(value, (set, frozenset)):
        return "a YAML set (!!set); write a list"
    if isinstance(value, tuple):
        return "a YAML ordered map or pairs (!!omap, !!pairs); write a mapping"
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return None
    return f"a {type(value).__name__}; not supported"


def plain_problems(value: object, path: tuple, add) -> None:
    """Walk a pass-through value: only JSON-able data, finite numbers, usable strings and keys.

    `add(path, message)` records a problem.
    """
    foreign = foreign_type(value)
    if foreign:
        add(path, f"is {foreign}")
    elif isinstance(value, str):
        if (why := text_problem(value, multiline=True)):
            add(path, why)
    elif (why := number_problem(value)):
        add(path, why)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (why := text_problem(key)):
                add(path + (key,), f"key {why}")
            elif not isinstance(key, (str, int)) or isinstance(key, bool):
                add(path + (key,), f"key must be a string, found {type(key).__name__} {key!r}")
            plain_problems(item, path + (key,), add)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            plain_problems(item, path + (i,), add)
