"""Load a YAML file into plain Python values plus the line/column of every key.

Validation errors name the file and line a value came from, so the loader keeps a `marks` map
from key path (a tuple of keys and list indices) to (file, line, column), 1-based.
"""

from __future__ import annotations

from pathlib import Path

from .errors import FlowgateError

Marks = dict[tuple, tuple[str, int, int]]


def load_yaml(path: Path, display: str | None = None) -> tuple[object, Marks]:
    """Parse `path` (safe loader). Returns (data, marks); an empty file gives (None, {})."""
    import yaml

    display = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowgateError(f"{display}: file not found", "restore it with `git checkout config/flowgate.yaml`") from None
    except UnicodeDecodeError as exc:
        raise FlowgateError(f"{display}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise FlowgateError(f"{display}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
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
