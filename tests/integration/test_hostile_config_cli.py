"""Hostile and mistaken input through the real `doit` command line (issue 8, config half): what the
table in test_config_cli.py cannot express (FIFOs, 50 MB, secrets in output, file modes, init)."""

from __future__ import annotations

import os
import stat
import time

from tests.conftest import ROOT, run_doit
from tests.integration.test_config_cli import DIRECT, DIRECT_TAIL, snapshot

PASTED_KEY = "sk-proj-Q3vX9tLm2Pq8Rt5Wn7Yb4Hc6Jd1Fg0SaZ"


def test_fifo_as_config_is_refused_not_read(home):
    local = home / "config" / "local.yaml"
    os.mkfifo(local)
    for command in ("check", "render"):
        result = run_doit(home, command, timeout=60)  # reading the FIFO would block forever
        assert result.returncode == 1, result.output
        assert "config/local.yaml: not a regular file (a FIFO); refused without reading it" in result.stderr
        assert "Traceback" not in result.output
    assert not (home / ".router" / "state").exists()


def test_50_mb_string_is_refused_fast(home):
    local = home / "config" / "local.yaml"
    with open(local, "wb") as fh:
        fh.write(b"litellm_settings:\n  drop_params: '" + b"x" * (50 * 1024 * 1024) + b"'\n")
    started = time.monotonic()
    result = run_doit(home, "check")
    assert result.returncode == 1 and "config/local.yaml: larger than 256 KiB; refused without parsing it" in result.stderr
    assert time.monotonic() - started < 30  # was: check passed after minutes and gigabytes


def test_key_pasted_as_env_name_is_never_echoed(home):
    (home / "config" / "local.yaml").write_text(DIRECT + f"api_key_env: {PASTED_KEY}}}\n" + DIRECT_TAIL)
    for command in ("check", "render", "doctor", "up"):
        result = run_doit(home, command, timeout=120)
        assert result.returncode != 0, result.output
        assert PASTED_KEY not in result.output, (command, result.output)
        assert "models[0].api_key_env" in result.output and "sk-pro…" in result.output


def test_multi_line_key_file_is_refused(home):
    key = home / "key.txt"
    key.write_text("sk-first\nsk-second\n")
    (home / "config" / "local.yaml").write_text(DIRECT + f"api_key_file: {key}}}\n" + DIRECT_TAIL)
    result = run_doit(home, "check")
    assert result.returncode == 1
    assert f"models[0].api_key_file: {key} holds 2 non-empty lines" in result.stderr
    key.write_text("sk-first\n")
    assert run_doit(home, "check").returncode == 0


def test_state_files_holding_config_values_are_private(home, paths):
    (home / "config" / "local.yaml").write_text("litellm:\n  env: {UPSTREAM_TOKEN: tok-secret}\n")
    result = run_doit(home, "config")
    assert result.returncode == 0, result.output
    for path in (paths.stack_json, paths.render_inputs("litellm"), paths.render_inputs("cliproxy")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_unchecked_settings_let_a_newer_key_through(home):
    local = home / "config" / "local.yaml"
    local.write_text("litellm_settings: {brand_new_flag: true}\n")
    refused = run_doit(home, "check")
    assert refused.returncode == 1 and "add litellm_settings.brand_new_flag to unchecked_settings" in refused.stderr
    local.write_text("litellm_settings: {brand_new_flag: true}\nunchecked_settings: [litellm_settings.brand_new_flag]\n")
    result = run_doit(home, "render")
    assert result.returncode == 0, result.output
    assert "brand_new_flag: true" in (home / ".router" / "litellm" / "config.yaml").read_text()


def test_empty_home_offers_init(tmp_path):
    home = tmp_path / "empty"
    home.mkdir()
    missing = run_doit(home, "check")
    assert missing.returncode == 1
    assert "config/flowgate.yaml: file not found" in missing.stderr
    assert "uv run doit init" in missing.stderr and "git checkout" not in missing.stderr
    before = snapshot(home / ".router")
    first = run_doit(home, "init")
    assert first.returncode == 0 and "wrote" in first.stdout, first.output
    assert (home / "config" / "flowgate.yaml").read_bytes() == (ROOT / "config" / "flowgate.yaml").read_bytes()
    assert snapshot(home / ".router") == before  # init writes the config, nothing else
    assert run_doit(home, "check").returncode == 0
    (home / "config" / "flowgate.yaml").write_text("# mine\n" + (ROOT / "config" / "flowgate.yaml").read_text())
    again = run_doit(home, "init")
    assert again.returncode == 0 and "already exists; left as it is" in again.stdout
    assert (home / "config" / "flowgate.yaml").read_text().startswith("# mine\n")
