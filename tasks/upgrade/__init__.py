"""Staying current: `doit upgrade` and `doit rollback` of CLIProxyAPI.

A new release is downloaded and verified beside the running one (tasks.release, which keeps the
previous), proven on a bridge instance (ready, then a smoke test of what the accounts serve)
before any traffic moves to it (tasks.stack.swaps.bluegreen), and pinned in config/local.yaml only
once it serves. Anything that fails puts the previous release back by itself.

May import base, config, release, services, stack, catalog and clients; nothing imports it but
the doit layer.
"""
