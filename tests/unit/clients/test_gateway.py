"""tasks.clients.gateway: a member's key is wired by a helper that reads the kept copy (no copy in a
client file), prints it as the master key's `cat` does, and fails with a line saying why once it
is gone; integrate refuses a member whose key is not kept, or not active."""

from __future__ import annotations

import subprocess

import pytest

from tasks.base.errors import FlowgateError
from tasks.clients.gateway import gateway, member_gateway
from tasks.config.load import load_stack
from tasks.keys import kept, manage


def test_a_members_helper_prints_the_kept_key_and_fails_clearly_once_it_is_gone(paths):
    key = manage.create(paths, "ana", keep=True)
    gw = member_gateway(paths, load_stack(paths), "ana")
    assert gw.fingerprint()["member"] == "ana" and gw.key_path == kept.key_path(paths, "ana")
    assert key not in gw.key_shell_command and key not in repr(gw.key_argv)
    ran = subprocess.run(gw.key_shell_command, shell=True, capture_output=True, text=True)  # as Claude Code runs it
    assert ran.returncode == 0 and ran.stdout == key + "\n"
    assert subprocess.run(gw.key_argv, capture_output=True, text=True).stdout == key + "\n"  # as Codex runs it
    manage.revoke(paths, "ana")
    ran = subprocess.run(gw.key_argv, capture_output=True, text=True)
    assert ran.returncode == 1 and ran.stdout == ""
    assert ran.stderr.strip() == ("flowgate: the key of member ana is not kept here any more (revoked?): "
                                  "ask for a new one, then run integrate again")


def test_the_master_keys_wiring_is_as_it_was(paths):
    gw = gateway(paths, load_stack(paths))
    assert gw.key_argv == ["cat", str(paths.secret("litellm_master_key"))] and "member" not in gw.fingerprint()


@pytest.mark.parametrize("case", ["unknown", "revoked", "not kept"])
def test_integrate_refuses_a_member_it_cannot_wire(paths, case):
    if case == "revoked":
        manage.create(paths, "ana", keep=True)
        manage.revoke(paths, "ana")
    elif case == "not kept":
        manage.create(paths, "ana")
    with pytest.raises(FlowgateError) as caught:
        member_gateway(paths, load_stack(paths), "ana")
    said = caught.value.one_line()
    if case == "not kept":
        assert "is not kept for clients" in said and "keys rotate ana --keep" in said
    else:
        assert "no active member key named ana" in said and ("revoked" in said) == (case == "revoked")
