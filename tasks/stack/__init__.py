"""Running the stack: process records and identity, spawning and stopping, ports, readiness
probes, the start / restart / reload / stop decisions (lifecycle), the stack lock and the event log.

May import the shared plumbing (tasks.errors, paths, fsutil, services, release); never doit.
"""
