"""tasks.config.keyfiles: upstream key files are regular, single-line files the user owns (issue 8, item 11)."""

from __future__ import annotations

import os

import pytest

from tasks.base.errors import FlowgateError
from tasks.config.keyfiles import MAX_KEY_FILE_BYTES, key_file_problem, read_key_file


def test_one_line_key(tmp_path):
    key = tmp_path / "key"
    key.write_text("  sk-abc  \n\n")
    assert read_key_file(key) == "sk-abc" and key_file_problem(key) is None


@pytest.mark.parametrize("content,problem", [
    ("a\nb\n", "holds 2 non-empty lines"),
    ("\n \n", "holds 0 non-empty lines"),
    ("x" * (MAX_KEY_FILE_BYTES + 1), "larger than"),
    ("a\x1bb", "control characters"),
])
def test_unusable_contents(tmp_path, content, problem):
    key = tmp_path / "key"
    key.write_text(content)
    with pytest.raises(FlowgateError, match=problem):
        read_key_file(key)


def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file (a FIFO)" in key_file_problem(fifo)  # and it did not block
    assert "not a regular file (a character device)" in key_file_problem("/dev/zero")
    assert "not a regular file (a directory)" in key_file_problem(tmp_path)
    assert "does not exist" in key_file_problem(tmp_path / "missing")
