"""FlowGate: a local LLM gateway (LiteLLM in front of CLIProxyAPI) driven by doit.

One package per capability, lowest first: `base` (errors, paths, files, local HTTP, terminal),
`config` (load and validate config/), `services` (each service's render inputs, launch and probe),
`release` (the CLIProxyAPI binary), `stack` (processes, supervision, lifecycle, swap), `catalog`
(what the binary serves), `accounts`, `clients`, `deploy`, `inspect` (status, pending, doctor),
and `graph`, the thin layer of doit task creators on top. Only `graph` imports doit. Keep imports
at module level light: every `doit` command imports this package.
"""
