"""Replacing a running service without a gap: a new LiteLLM instance beside the old on a shared port
(swap, with its replicas), and a new CLIProxyAPI behind a bridge LiteLLM moves to and back (bluegreen)."""
