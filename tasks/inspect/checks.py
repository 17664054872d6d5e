"""One line of `doit doctor`: a check's name, whether it passed, what was found and the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    name: str  # short, e.g. "config"
    ok: bool
    detail: str  # what was found, one line
    fix: str = ""  # what to do when not ok (or when warn), one line
    warn: bool = False  # ok but worth a look (e.g. disk getting full)
    skipped: bool = False  # not run: what it needs is missing (an invalid config); never "ok"

    @property
    def status(self) -> str:
        if self.skipped:
            return "skip"
        if not self.ok:
            return "FAIL"
        return "warn" if self.warn else "ok"
