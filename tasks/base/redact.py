"""Keys never reach the terminal in full.

A key pasted where a name belongs (`api_key_env: sk-proj-...`) used to be echoed back by `check`,
`up` and `doctor`. Anything that looks like a key is shown as `sk-pro…abcd`: enough to recognise,
never enough to use. Hex digests (checksums) and ordinary words do not look like keys.
"""

from __future__ import annotations

import functools
import re

# Vendor prefixes (OpenAI/Anthropic sk-, GitHub, Slack, AWS, Google, Hugging Face, Groq, GitLab)
# followed by enough key material; or a long token mixing upper case, lower case and digits.
_PREFIXED = r"(?:sk|pk|rk)[-_][A-Za-z0-9_-]{12,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}" \
            r"|xox[abpr]-[A-Za-z0-9-]{10,}|AKIA[A-Z0-9]{16}|AIza[A-Za-z0-9_-]{30,}|hf_[A-Za-z0-9]{20,}" \
            r"|gsk_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{20,}|mgmt-[A-Za-z0-9_-]{20,}"


@functools.cache
def _token() -> re.Pattern:
    # Compiled on first use: tasks.secrets imports this module on every `doit` run.
    return re.compile(rf"(?<![A-Za-z0-9_-])(?:{_PREFIXED}|[A-Za-z0-9_+/=-]{{32,}})(?![A-Za-z0-9_-])")


def _mixed(token: str) -> bool:
    return any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token)


def _is_key(token: str) -> bool:
    return bool(re.fullmatch(_PREFIXED, token)) or (_mixed(token) and "/" not in token)


def mask(token: str) -> str:
    """Enough to recognise a key, never enough to use it."""
    if len(token) <= 12:
        return "…" * 3
    return f"{token[:6]}…{token[-4:]}"


def masked_if_key(text: str) -> str:
    """`text` with every key-looking token masked."""
    return _token().sub(lambda m: mask(m.group()) if _is_key(m.group()) else m.group(), text)
