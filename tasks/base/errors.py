"""The one exception type users see.

Anything FlowGate expects to go wrong (bad config, port taken, offline, wrong key, missing binary)
raises FlowgateError. The doit boundary turns it into one clean line and a non-zero exit; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class FlowgateError(Exception):
    """A problem the user can fix: `message` says what is wrong, `hint` what to do."""

    def __init__(self, message: str, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Extra lines (e.g. one per config problem, or a log tail), printed after the message.
        self.details = list(details or [])

    def __str__(self) -> str:
        return self.one_line()

    def one_line(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def render(self) -> str:
        """Full text for the terminal: message, hint, then any detail lines (tasks.terminal escapes)."""
        from .terminal import printable

        lines = [f"error: {printable(self.message, keep_newlines=True)}"]
        lines += [f"  {printable(d)}" for d in self.details]
        if self.hint:
            lines.append(f"  hint: {printable(self.hint, keep_newlines=True)}")
        return "\n".join(lines)
