"""Writing an export's files: change-only (a second export with nothing changed writes nothing),
known stale files removed, and the list of what happened for the summary (names only, no content)."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import atomic_write


def parse_all(text: str, template: str) -> list:
    """Every YAML document of a rendered file (a broken template fails here, not in the cluster)."""
    import yaml

    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise FlowgateError(f"{template} rendered invalid YAML: {exc}", "fix the template") from None


def literal_ok(text: str, template: str, pick, expected: str) -> None:
    """An embedded config (a YAML literal block) must load back exactly as it was rendered."""
    try:
        found = pick(parse_all(text, template))
    except (KeyError, IndexError, TypeError):
        found = None
    if found != expected:
        raise FlowgateError(f"{template}: the embedded config does not load back as rendered",
                            "keep it a literal block (`key: |`) indented by the template's indent filter")


def sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class Output:
    out: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def write(cls, out: Path, files: dict[str, tuple[str, int]], stale: list[str] = (), notes=()) -> "Output":
        result = cls(out, notes=list(notes))
        for name, (text, mode) in files.items():
            changed = atomic_write(out / name, text, mode=mode)
            (result.written if changed else result.unchanged).append(name)
        for name in stale:
            if name not in files and (out / name).exists():
                with contextlib.suppress(FileNotFoundError):
                    (out / name).unlink()
                result.removed.append(name)
        return result

    @property
    def files(self) -> dict[str, str | None]:
        """file path -> sha256 of every file this export consists of (what `uptodate` compares)."""
        return {str(self.out / name): sha256(self.out / name) for name in [*self.written, *self.unchanged]}

    def lines(self, display) -> list[str]:
        out = [f"wrote {display(self.out / n)}" for n in self.written]
        out += [f"removed {display(self.out / n)} (no longer part of the export)" for n in self.removed]
        if self.unchanged and not self.written:
            out.append(f"{display(self.out)}: {len(self.unchanged)} file(s) already up to date")
        return out + [f"note: {note}" for note in self.notes]
