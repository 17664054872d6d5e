"""tasks.upgrade.switch: what `doit upgrade` decides before anything changes."""

from __future__ import annotations

import pytest

from tasks.base.errors import FlowgateError
from tasks.upgrade import switch

REPO = "router-for-me/CLIProxyAPI"


def test_a_latest_older_than_what_runs_is_refused_with_the_way_to_move_back():
    """Issue 31, item 10: GitHub's "latest" was v7.0.0 while v7.2.140 ran, and upgrade moved back silently."""
    with pytest.raises(FlowgateError) as err:
        switch._refuse_downgrade({"repo": REPO, "tag": "v7.2.140"}, REPO, "v7.0.0")
    assert "older than the installed v7.2.140: not downgrading" in err.value.message
    assert "upgrade --to v7.0.0" in err.value.hint


@pytest.mark.parametrize("current, repo, tag", [
    ({"repo": REPO, "tag": "v7.2.140"}, REPO, "v7.2.150"),          # newer
    ({"repo": REPO, "tag": "v7.2.140"}, "kaitranntt/CLIProxyAPIPlus", "v6.9.8-0"),  # another line
    ({"repo": REPO, "tag": "nightly"}, REPO, "v7.0.0"),             # nothing to compare
])
def test_newer_releases_and_other_lines_are_not_held_back(current, repo, tag):
    switch._refuse_downgrade(current, repo, tag)
