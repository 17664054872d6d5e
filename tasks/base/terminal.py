"""The one path from a value to the terminal: control characters escaped, keys masked.

A profile name, a YAML key or a log line could otherwise carry an escape sequence (recolour or
rewrite the screen) or a carriage return (overwrite what was printed) onto the user's terminal.
"""

from __future__ import annotations

import re

from .redact import masked_if_key

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # all but tab
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` as it may be printed: control characters escaped (`\\x1b`), keys masked.

    A newline is escaped too unless `keep_newlines` (text FlowGate laid out in lines itself).
    """
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return masked_if_key(pattern.sub(lambda m: repr(m.group())[1:-1], text))
