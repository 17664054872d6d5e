"""The three services FlowGate runs, one module each: `litellm` (the gateway: its config with the
catalog's routes, auth hook, launch), `cliproxy` (CLIProxyAPI: its config, launch) and `redis` (the
managed Redis); `common` holds what they share (addresses, readiness routes, the launcher's
command line, restart fingerprints), `render` the Jinja templates and `secrets` the generated keys.

Plain data in, plain data out. May import `base`, `config`, `catalog.routes`; launching itself
belongs to `stack`. Never doit.
"""
