"""The control plane's runtime: starting, watching, swapping and stopping the services.

lifecycle  the start / restart / reload / stop decisions (ensure_running, stop_service)
launcher   `python -m tasks.stack.launcher supervise ...`: the process every service runs under
lock       the stack lock; events  the event log (.router/events.jsonl); logins  login sessions
process/   records and identity, spawning, stopping, ports, logs
launch/    what a start needs: launch specs, preflight (ports, binaries), the launcher's files, log rotation
watch/     supervision and readiness: the supervisor, probes, health, recovery of lost records
swaps/     a new LiteLLM without a gap (swap, replicas) and a new CLIProxyAPI through a bridge (bluegreen)

May import `base`, `config`, `services`, `release` and the gateway's `handoff` / `reuseport`; never doit.
"""
