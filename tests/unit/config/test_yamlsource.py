"""tasks.config.yamlsource: hostile files are refused before they cost anything (issue 8: items 1, 12)."""

from __future__ import annotations

import os

import pytest

from tasks.base.errors import FlowgateError
from tasks.config.yamlsource import MAX_ALIASES, MAX_CONFIG_BYTES, load_yaml


def load(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_yaml(path, "c.yaml")


def test_alias_of_a_scalar_still_works(tmp_path):
    data, marks = load(tmp_path, "a: &x 5\nb: *x\n")
    assert data == {"a": 5, "b": 5} and marks[("b",)][1] == 2


@pytest.mark.parametrize("text", ["a: &a [1, 2]\nb: *a\n", "a: &a {k: v}\nb: [*a]\n", "a: &a [*a]\n"])
def test_alias_of_a_collection_is_refused_where_it_is_used(tmp_path, text):
    with pytest.raises(FlowgateError, match=r"c.yaml:\d+:\d+: YAML syntax error: alias \*a names a list or mapping"):
        load(tmp_path, text)


def test_alias_budget(tmp_path):
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(FlowgateError, match=f"more than {MAX_ALIASES} aliases"):
        load(tmp_path, text)


def test_size_cap_reads_no_further(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as fh:
        fh.write(b"profile: '")
        fh.truncate(50 * 1024 * 1024)  # 50 MB (sparse): refused without reading it all
    with pytest.raises(FlowgateError, match=f"larger than {MAX_CONFIG_BYTES // 1024} KiB"):
        load_yaml(path, "big.yaml")


def test_fifo_and_device_are_refused_unread(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(FlowgateError, match=r"not a regular file \(a FIFO\)"):
        load_yaml(fifo, "fifo.yaml")
    with pytest.raises(FlowgateError, match=r"not a regular file \(a character device\)"):
        load_yaml("/dev/zero", "zero")
