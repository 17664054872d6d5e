"""FlowGate: a local LLM gateway (LiteLLM in front of CLIProxyAPIPlus) driven by doit.

The modules here are a plain-Python core that knows nothing of doit; `tasks.graph` is the thin
layer of doit task creators on top. Keep imports at module level light: every `doit` command
imports this package.
"""
