"""Deploying the stack for a team: Kubernetes manifests and a Compose file from the same validated
config (`doit export:k8s`, `doit export:compose`). Plain Python; knows nothing of doit.

cluster (what a container deployment consists of: configs with keys as references, the Secret's
values), k8s and compose (their files, from templates/k8s/ and templates/compose/), output
(change-only writes). Import the modules themselves: this package's import costs nothing.
"""
