"""What the running CLIProxyAPI serves, and the routes and choices built from it.

The binary serves a model only while an account that serves it is loaded, under the ids of its live
catalog (refreshed every 3 h without a release). FlowGate never keeps a list of those ids: LiteLLM
routes every id by pattern (`claude-*` on Anthropic Messages, any other on OpenAI chat/Responses),
the gateway's `/v1/models` is asked of the binary live (`served_models`, inside LiteLLM's process),
and a kept copy (`store`, refreshed by `discover`) answers `doit models`, `status` and the client
slots' automatic choice (`choose`) without a request.

May import: tasks' base modules (errors, paths, fsutil, localhttp, secrets, services), accounts.
Nothing here imports doit.
"""
