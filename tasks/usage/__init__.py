"""`doit usage` and the dashboard's sums over the usage history the gateway writes
(tasks.gateway.usage: the database, its rollup and the recorder).

aggregate  the sums: from the hourly rollup, and from the rows for the hours it cannot take whole
report     `doit usage`: totals per model / day / hour / account, percentiles, text / JSON / CSV
ledger     usage per CLIProxyAPI account, recorded by the accounts steward (the binary's per-account
           totals, and its usage queue's records when the user allows it)
accounts   usage per account and what the subscriptions saved, read from the ledger's tables

Nothing here imports doit or LiteLLM.
"""
