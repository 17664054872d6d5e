"""Supervision and readiness: the supervisor a launcher runs, readiness probes and waits, a hung
service's diagnosis, and a service whose run record was lost found again by what it is."""
