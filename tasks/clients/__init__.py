"""Client integration: wire Codex CLI and Claude Code to the gateway, and prove every protocol works.

gateway   what a client needs to know about the gateway (URLs, the key-printing command, models)
files     the shared write discipline: parse all first, back up, atomic 0600 writes, restore
record    what was applied (in .router/state/clients.json), so `doit status` can call it stale
codex     $CODEX_HOME/config.toml + flowgate.config.toml, merged with tomlkit (style kept)
claude    $CLAUDE_CONFIG_DIR/settings.json, merged key by key (order and indentation kept)
smoke     real requests through the running LiteLLM for what the accounts serve

Never a copy of the gateway key in a client file: both clients run a command that prints it.
"""
