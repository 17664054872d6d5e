"""The stack config: config/flowgate.yaml (+ config/local.yaml) loaded, validated and resolved.

load        load_stack: defaults, the active profile, every problem at once with file:line
schema      the typed schema engine; valuerules, what any value may be; yamlsource, safe YAML reading
passthrough LiteLLM / CLIProxyAPI keys passed through as written (passthrough_keys.json)
merge       deep merge of local.yaml and profiles; profiles, the `doit profile` choice
teamspec    the team keys (replicas, redis, cliproxy.store, deploy); keyfiles, users' key files
names       the services' names and which are enabled; init, the commented default config

May import `base` and the provider table (accounts.provider_spec, accounts.providers) and
release.lines; nothing that runs a process. Never doit.
"""
