"""Accounts: the OAuth logins CLIProxyAPI turns into API access.

Plain Python, no doit: the provider table (`providers`), a client for the binary's management API
(`management`), the login flow (`login`), the binary's own login flag as a fallback (`fallback`),
the account list and its changes (`inventory`), and the headless import of Codex CLI's login
(`codex_import`). The doit layer is tasks/graph/accounts.py.
"""
