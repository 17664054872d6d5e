"""tasks.release.progress: the download progress bar, alone and fed by fetch."""

from __future__ import annotations

import io

from tasks import release
from tests.unit.release.support import publish, settings
from tests.unit.release.support import _clean_env, gh_fixture, rpaths_fixture  # noqa: F401  (fixtures: autouse, gh, rpaths)


def test_progress_bar_quiet_off_terminal_and_under_ci():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert release.progress_enabled(Tty(), environ={})
    assert not release.progress_enabled(Tty(), environ={"CI": "true"})
    assert not release.progress_enabled(io.StringIO(), environ={})


def test_progress_bar_renders_bytes_rate_eta():
    out = io.StringIO()
    now = [100.0]
    bar = release.ProgressBar("CLIProxyAPIPlus.tar.gz", out, clock=lambda: now[0], width=100)
    now[0] = 102.0
    bar(4 * 1024 * 1024, 8 * 1024 * 1024)
    line = out.getvalue()
    assert " 50%" in line and "4.0 MiB/8.0 MiB" in line and "2.0 MiB/s" in line and "ETA 0:02" in line
    bar.close()
    assert out.getvalue().endswith("\n")


def test_progress_callable_receives_bytes(gh, rpaths, tmp_path):
    archive = publish(gh, tmp_path)
    seen = []
    release.fetch(rpaths, settings(gh), progress=lambda done, total: seen.append((done, total)))
    size = archive.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)
