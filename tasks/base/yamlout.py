"""Serialise values into rendered YAML so they load back exactly as written.

Templates own the shape of each file; these filters own the values. Strings that are not plainly
safe (quotes, colons, `#`, newlines, `{{`, YAML keywords, number look-alikes) are double-quoted
with PyYAML's escaping, so a hostile value cannot change the document's structure.
"""

from __future__ import annotations

import math
import re

class Rendered(str):
    """Text already serialised by this module: the template engine passes it through as is."""


def finalize(value: object) -> str:
    """Jinja's finalize hook: every `{{ value }}` without a filter is serialised too, so no
    template line (a comment included) can receive a raw value."""
    return value if isinstance(value, Rendered) else inline(value)


def embedded(text: str, width: int) -> Rendered:
    """A rendered file's text as the body of a YAML block scalar (`key: |`), indented `width` spaces.

    The text is FlowGate's own rendered YAML (already escaped); a line may not start a new key, since
    every line is indented past the `|`.
    """
    pad = " " * width
    return Rendered("\n".join(pad + line if line else line for line in str(text).splitlines()))


_PLAIN = r"^[A-Za-z_/][A-Za-z0-9_./@+-]*$"  # compiled by `re` on first use, not at every import
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"}


def scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        if re.match(_PLAIN, value) and value.lower() not in _RESERVED:
            return value
        return _double_quoted(value)
    raise TypeError(f"cannot render {type(value).__name__} into YAML")


def _double_quoted(text: str) -> str:
    import yaml

    out = yaml.safe_dump(text, default_style='"', width=float("inf"), allow_unicode=True)
    return out.rstrip("\n").removesuffix("\n...").rstrip("\n")


def inline(value: object) -> Rendered:
    """A value on one line: scalars as above, containers in flow style."""
    if isinstance(value, dict):
        return Rendered("{" + ", ".join(f"{scalar(k)}: {inline(v)}" for k, v in value.items()) + "}")
    if isinstance(value, list):
        return Rendered("[" + ", ".join(inline(v) for v in value) + "]")
    return Rendered(scalar(value))


def block(value: object, indent: int = 2) -> Rendered:
    """A mapping or list as an indented block that follows `key:` on the template line.

    Returns " {}" / " []" for empty containers and " <scalar>" for scalars, so the template can
    always write `key:{{ value | block(2) }}`.
    """
    if isinstance(value, (dict, list)) and value:
        return Rendered("\n" + "\n".join(_lines(value, indent)))
    return Rendered(" " + inline(value))


def _lines(value: object, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{scalar(key)}:")
                out += _lines(item, indent + 2)
            else:
                out.append(f"{pad}{scalar(key)}: {inline(item)}")
        return out
    for item in value:
        if isinstance(item, dict) and item:
            inner = _lines(item, indent + 2)
            out.append(f"{pad}- {inner[0].lstrip()}")
            out += inner[1:]
        elif isinstance(item, list) and item:
            out.append(f"{pad}-")
            out += _lines(item, indent + 2)
        else:
            out.append(f"{pad}- {inline(item)}")
    return out
