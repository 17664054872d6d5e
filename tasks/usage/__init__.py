"""`doit usage` and the dashboard's sums over the usage history the gateway writes
(tasks.gateway.usage: the database, its rollup and the recorder).

aggregate  the sums: from the hourly rollup, and from the rows for the hours it cannot take whole
report     `doit usage`: totals per model / day / hour / account, percentiles, text / JSON / CSV

Nothing here imports doit or LiteLLM.
"""
