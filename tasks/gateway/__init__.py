"""The gateway process, the data plane: everything LiteLLM's process runs on a request.

One entry point, `python -m tasks.gateway --host H --port P --grace S [--shared]`
(`litellm_server.main`): FlowGate's launcher forks it, and it serves LiteLLM's ASGI app on sockets
it bound itself. A request passes through, outermost first:

    uvicorn (h11)       connlimits: a deadline on a request's head and on a body's silence, a
                        connection cap below the file limit; sockets shared for swaps (reuseport)
    instance tag        litellm_server: `x-flowgate-instance: <pid>` on every answer
    dashboard           dashboard.routes: /flowgate/dashboard (its token; data from a child process)
    usage recorder      usage.recorder: times the exchange, keeps bounded references to the bodies;
                        a thread parses them (usage.extract) and writes batches (usage.store, rollup)
    served models       served_models: /v1/models asked of CLIProxyAPI live (Codex's shape:
                        codex_list), and the answer for an id no account serves
    gate                gate: the gateway key by one rule, before any body is read, or a member's
                        key with its limits (keys/: models, rpm, tpm, budget); bodies no path may
                        take (a repeated key, a client-side upstream)
    lean path           leanpath: forwards what LiteLLM would only forward (leanpolicy decides per
                        config, leanrules holds LiteLLM's rules it applies), straight to CLIProxyAPI
    LiteLLM             its own middleware, the key hook (key_hook, its custom_auth), its Router,
                        callbacks, guardrails, fallbacks and caching

What the process is handed (environment variables) and hands back (the worker file) is `handoff`.

The boundary: nothing here imports the control plane (tasks.stack, tasks.services, tasks.config,
...): only `tasks.base` and this package (tests/unit/test_layout.py holds it). The control plane may
import from here (the launcher starts `litellm_server`, `doit usage` reads `usage.store`).
"""
