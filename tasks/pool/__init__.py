"""The account pool: quota-aware steering of several accounts per provider (issue 29).

`policy` (pure: who goes out of rotation, who comes back, which models have no account left),
`pace` (pure: when an account's quota is read again), `forecast` (pure: when a window fills at the
current pace), `steward` (the long-running loop that acts on them through CLIProxyAPI's management
API), `state` (its state file, .router/state/pool.json), `service` (how `doit up` runs it).
"""
