"""The small base every other package stands on: the one user-facing error type (`errors`), where
files live (`paths`), atomic and bounded file I/O (`fsutil`), one HTTP exchange with a local
service over a raw socket (`localhttp`), printable terminal text (`terminal`), masking of keys
(`redact`) and YAML values that load back exactly (`yamlout`).

Imports nothing from FlowGate outside this package, and nothing heavy: every `doit` command loads it.
"""
