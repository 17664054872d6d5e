"""tasks.upgrade.pin: the release pin written into config/local.yaml as the user keeps it."""

from __future__ import annotations

import os

import pytest
import yaml

from tasks.base.errors import FlowgateError
from tasks.base.paths import Paths
from tasks.upgrade.pin import write_pin
from tests.unit.release.support import ROOT


@pytest.fixture
def paths(tmp_path) -> Paths:
    p = Paths(root=ROOT, home=tmp_path / "home")
    p.config_dir.mkdir(parents=True)
    return p


MINE = """# my settings
litellm:
  port: 4001   # mine

cliproxy:
  # the proxy
  port: 8318
  release:
    repo: router-for-me/CLIProxyAPI  # main line
    version: "v7.2.140" # pinned by hand
models:
    - name: x
      via: direct
      model: openai/x
"""


def test_the_version_changes_and_nothing_else(paths):
    paths.local_config.write_text(MINE)
    assert write_pin(paths, "v7.3.0")
    before, after = MINE.splitlines(), paths.local_config.read_text().splitlines()
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(before) == len(after) and len(changed) == 1  # quoting and the comment kept (its column too)
    assert changed[0][1].split() == ['version:', '"v7.3.0"', "#", "pinned", "by", "hand"]
    assert not write_pin(paths, "v7.3.0")  # the same pin again: the file is not rewritten


def test_a_missing_section_is_added_below_what_the_user_wrote(paths):
    text = "# only ports here\nlitellm:\n  port: 4001\n"
    paths.local_config.write_text(text)
    write_pin(paths, "v7.3.0", "kaitranntt/CLIProxyAPIPlus")
    after = paths.local_config.read_text()
    assert after.startswith(text)
    assert yaml.safe_load(after)["cliproxy"]["release"] == {"version": "v7.3.0", "repo": "kaitranntt/CLIProxyAPIPlus"}


@pytest.mark.parametrize("text", ["", "# just a comment\n", "litellm: {port: 1}\ncliproxy: {port: 2}\n"])
def test_empty_comment_only_and_flow_style_files(paths, text):
    paths.local_config.write_text(text)
    write_pin(paths, "v7.3.0")
    after = paths.local_config.read_text()
    assert all(line in after for line in ("# just a comment", "litellm: {port: 1}") if line in text)
    assert yaml.safe_load(after)["cliproxy"]["release"]["version"] == "v7.3.0"


def test_no_local_file_creates_one(paths):
    write_pin(paths, "v7.3.0")
    assert yaml.safe_load(paths.local_config.read_text()) == {"cliproxy": {"release": {"version": "v7.3.0"}}}


def test_a_linked_file_is_written_where_it_lives_with_its_mode(paths, tmp_path):
    real = tmp_path / "dotfiles" / "flowgate.yaml"
    real.parent.mkdir()
    real.write_text(MINE)
    os.chmod(real, 0o600)
    paths.local_config.symlink_to(real)
    write_pin(paths, "v7.3.0")
    assert paths.local_config.is_symlink() and '"v7.3.0"' in real.read_text()
    assert os.stat(real).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("text, says", [("- a list\n", "does not hold a mapping"),
                                        ("cliproxy: 8317\n", "`cliproxy` is not a mapping"),
                                        ("cliproxy: {release: [1]}\n", "`release` is not a mapping"),
                                        ("cliproxy: [\n", "is not valid YAML")])
def test_a_file_it_cannot_pin_in_is_left_alone_with_one_line(paths, text, says):
    paths.local_config.write_text(text)
    with pytest.raises(FlowgateError) as err:
        write_pin(paths, "v7.3.0")
    assert says in err.value.message and paths.local_config.read_text() == text


def test_a_fifo_is_refused_without_reading(paths):
    os.mkfifo(paths.local_config)
    with pytest.raises(FlowgateError) as err:
        write_pin(paths, "v7.3.0")
    assert "not a regular file" in err.value.message


def test_check_pin_writes_nothing_and_refuses_what_could_not_be_pinned_later(paths, monkeypatch):
    from tasks.upgrade import pin

    paths.local_config.write_text(MINE)
    pin.check_pin(paths)
    assert paths.local_config.read_text() == MINE
    # a file this user may not write (the test may run as root, who may write anything: ask as the kernel would not)
    real = str(paths.local_config.resolve())
    monkeypatch.setattr(pin.os, "access", lambda p, mode: str(p) != real)
    with pytest.raises(FlowgateError) as err:
        pin.check_pin(paths)
    assert "cannot be written" in err.value.message and "chmod u+w" in err.value.hint
    monkeypatch.undo()
    paths.local_config.write_text("cliproxy: 8317\n")
    with pytest.raises(FlowgateError) as err:
        pin.check_pin(paths)
    assert "`cliproxy` is not a mapping" in err.value.message and paths.local_config.read_text() == "cliproxy: 8317\n"
