"""Load a YAML file into plain Python values plus the line/column of every key.

Validation errors name the file and line a value came from, so the loader keeps a `marks` map
from key path (a tuple of keys and list indices) to (file, line, column), 1-based.

Hostile files are refused before they cost anything: only a regular file is read (a FIFO would
block, a device never end), at most MAX_CONFIG_BYTES of it, and an alias may name a scalar only
(nine levels of aliased lists in 400 bytes once expanded to gigabytes).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..base.errors import FlowgateError
from ..base.fsutil import NotRegularFile, read_regular
from ..base.terminal import printable

Marks = dict[tuple, tuple[str, int, int]]
MAX_CONFIG_BYTES = 256 * 1024  # the shipped config is ~5 KB
MAX_ALIASES = 100  # aliases of scalars; each costs one value


def load_yaml(path: Path, display: str | None = None) -> tuple[object, Marks]:
    """Parse `path` (safe loader). Returns (data, marks); an empty file gives (None, {})."""
    import yaml

    display = display or str(path)
    raw = _read_capped(Path(path), display)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowgateError(f"{display}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        node = _loader(yaml)(text).get_single_node()
        if node is None:
            return None, {}
        marks: Marks = {}
        data = _build(node, (), display, marks, yaml)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark else display
        problem = exc.problem or exc.context or "invalid YAML"
        raise FlowgateError(f"{where}: YAML syntax error: {problem}", "fix the YAML syntax at that line") from None
    except yaml.YAMLError as exc:
        raise FlowgateError(f"{display}: YAML error: {exc}") from None
    return data, marks


def _read_capped(path: Path, display: str) -> bytes:
    """The file's bytes: a regular file of at most MAX_CONFIG_BYTES, else a FlowgateError."""
    try:
        data, _ = read_regular(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        if path.is_symlink():
            raise FlowgateError(f"{display}: a symbolic link to {printable(os.readlink(path))}, which does not exist",
                                "restore the file it points to, or remove the link") from None
        raise FlowgateError(f"{display}: file not found", _restore_hint(path)) from None
    except NotRegularFile as exc:
        raise FlowgateError(f"{display}: not a regular file ({exc.kind}); refused without reading it",
                            "a config file must be an ordinary YAML file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FlowgateError(f"{display}: a symbolic link that loops ({exc.strerror})",
                                "point the link at a real file, or remove it") from None
        raise FlowgateError(f"{display}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise FlowgateError(f"{display}: larger than {MAX_CONFIG_BYTES // 1024} KiB; refused without parsing it",
                            "a FlowGate config is a few KB: remove what does not belong there")
    return data


def _restore_hint(path: Path) -> str:
    from ..base.paths import ROOT

    if path.parent.parent == ROOT:
        return "restore it with `git checkout config/flowgate.yaml` (or `uv run doit init`)"
    return "run `uv run doit init` to write the commented default config there"


def _loader(yaml):
    """PyYAML's safe composer, refusing aliases of collections and more than MAX_ALIASES aliases."""

    class GuardedLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                target = self.anchors.get(event.anchor)
                if target is not None and not isinstance(target, yaml.ScalarNode):
                    raise yaml.MarkedYAMLError(
                        problem=f"alias *{event.anchor} names a list or mapping; only scalars may be aliased "
                                "here (write the value out)", problem_mark=event.start_mark)
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise yaml.MarkedYAMLError(problem=f"more than {MAX_ALIASES} aliases", problem_mark=event.start_mark)
            return super().compose_node(parent, index)

    return GuardedLoader


def _build(node, path: tuple, display: str, marks: Marks, yaml) -> object:
    marks.setdefault(path, (display, node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _problem(display, key_node, "YAML merge keys (<<) are not supported here")
            key = _scalar(key_node, yaml)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise _problem(display, key_node, "mapping keys must be plain scalars")
            if key in out:
                raise _problem(display, key_node, f"duplicate key {key!r}")
            child = path + (key,)
            marks[child] = (display, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _build(value_node, child, display, marks, yaml)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), display, marks, yaml) for i, item in enumerate(node.value)]
    return _scalar(node, yaml)


def _scalar(node, yaml):
    if not isinstance(node, yaml.ScalarNode):
        return node  # rejected by the caller
    loader = yaml.SafeLoader("")
    return loader.construct_object(node, deep=True)


def _problem(display, node, message):
    import yaml

    # Raised inside load_yaml's try block, which formats it like any syntax error.
    return yaml.MarkedYAMLError(problem=message, problem_mark=node.start_mark)
