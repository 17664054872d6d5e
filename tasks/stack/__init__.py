"""Running the stack: process records and identity, spawning and stopping, ports, readiness
probes, the start / restart / reload / stop decisions (lifecycle), the stack lock and the event log.

May import `base`, `config`, `services` and `release`; never doit.
"""
