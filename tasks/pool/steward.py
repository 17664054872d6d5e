"""The steward: a long-running loop that keeps every account of the pool below its quota threshold.

About every second it lists the accounts (GET auth-files: local and cheap), reads the quota of the
accounts that are due (tasks.pool.pace; through tasks.accounts.quota.read_one, fresh, and refreshes
the 60 s copy `doit status` shows), decides (tasks.pool.policy), takes accounts out of rotation and
puts them back through the management API, writes `.router/state/pool.json` (contract B) and
records every decision as an event. A failure is an event, never the end of the loop.

Plain Python, no doit: `python -m tasks.pool --home H`, supervised by FlowGate's launcher
(tasks.pool.service), stopped by `doit down`.
"""

from __future__ import annotations

import json
import time

from ..accounts import pool_state, quota
from ..accounts.inventory import Account, api_key_accounts, set_disabled
from ..base.errors import FlowgateError
from ..base.paths import Paths
from ..config.accountspec import steering as steering_of
from ..stack import events
from . import forecast, policy
from .pace import Pacer

POLL_SECONDS = 1.0
SERVICE = "steward"
READ_TIMEOUT = 5.0
REWRITE_SECONDS = 30.0  # the gateway ignores a state file older than 120 s (tasks.gateway.steered)
STARTUP_GRACE = 30.0  # `up` starts it while CLIProxyAPI boots: a refused listing then is no event
HANDOVER_SECONDS = 0.35  # the gateway looks at the state file every 0.25 s (tasks.gateway.steered.CHECK_SECONDS)


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Steward:
    def __init__(self, paths: Paths, stack: dict, client, clock=time.time, read_one=quota.read_one, ledger=None,
                 sleep=time.sleep):
        self.paths, self.client, self.clock, self.read_one, self.sleep = paths, client, clock, read_one, sleep
        self.ledger = ledger if ledger is not None else _ledger()
        self.set_stack(stack)
        self.quotas: dict[str, quota.Quota] = {}
        self.samples: dict[tuple[str, str], list] = {}
        self.models_of: dict[str, list] = {}
        self.catalog_seen = None
        self.started, self.listed = clock(), False
        self.api_keys: tuple[float, list] = (0.0, [])
        self.steered: dict = {}
        self.last_written, self.last_text, self.troubles = 0.0, "", set()
        self.memory = self._remembered()

    def set_stack(self, stack: dict) -> None:
        self.stack, self.settings = stack, steering_of(stack)
        self.fallbacks = policy.fallback_map(stack)
        self.pacer = getattr(self, "pacer", None) or Pacer(self.settings.refresh_seconds, self.settings.min_refresh_seconds)
        self.pacer.refresh, self.pacer.min_refresh = self.settings.refresh_seconds, self.settings.min_refresh_seconds

    def _remembered(self) -> policy.Memory:
        """What the previous steward left: its own disables (state "out") and the user's overrides."""
        data = pool_state.read(self.paths) or {}
        ours, overrides = {}, {}
        for entry in data.get("accounts") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            until = entry.get("until") if isinstance(entry.get("until"), (int, float)) else None
            if entry.get("state") == policy.OUT:
                ours[entry["name"]] = {"until": until, "reason": str(entry.get("reason") or "")}
            elif entry.get("reason") == "put back by you":
                overrides[entry["name"]] = until
        return policy.Memory(ours, overrides, frozenset())

    # ------------------------------------------------------------------ one pass

    def cycle(self) -> None:
        now = self.clock()
        try:
            files = self.client.get("auth-files").get("files") or []
        except FlowgateError as exc:
            if self.listed or now - self.started >= STARTUP_GRACE:  # CLIProxyAPI starts beside it: not a trouble yet
                self._trouble("list", f"cannot list the accounts: {exc.one_line()}")
            return
        self.troubles.discard("list")
        self.listed = True
        files = [f for f in files if isinstance(f, dict)]
        self._note_counters(files, now)
        accounts = [Account.from_file(f, self.stack) for f in files] + self._api_keys(now)
        counters = {str(f.get("name") or f.get("id") or ""): f for f in files}
        self._read_due(accounts, counters, now)
        user = frozenset(pool_state.marks(self.paths))
        memory = self.memory._replace(user_disabled=user)
        windows = {name: q.windows for name, q in self.quotas.items()}
        decision = policy.decide(accounts, windows, memory, self.settings.threshold, now, self.settings.steering)
        self._models()
        steered = policy.steered(accounts, decision.verdicts, self.models_of, self.fallbacks)
        if _providers(steered) - _providers(self.steered):  # the gateway answers for them before their last account goes
            self._write(accounts, decision.verdicts, steered, now)
            self.sleep(HANDOVER_SECONDS)
        self.memory = self._apply(decision, now)
        self._hint(decision, now)
        self._say_steered(steered)
        self._write(accounts, decision.verdicts, steered, now)

    def _api_keys(self, now: float) -> list:
        """The config's API keys (in rotation, never steered), asked again every refresh."""
        if not ((self.stack.get("cliproxy") or {}).get("api_keys")):
            return []
        at, kept = self.api_keys
        if now - at >= self.settings.refresh_seconds:
            try:
                kept = api_key_accounts(self.client, self.stack)
            except FlowgateError:
                pass
            self.api_keys = (now, kept)
        return kept

    def _note_counters(self, files: list, now: float) -> None:
        if self.ledger is None:
            return
        try:
            self.ledger.note_counters(self.paths, files, now)
            if self.settings.read_usage_queue:
                self.ledger.drain_queue(self.paths, self.client)
            self.troubles.discard("ledger")
        except Exception as exc:  # noqa: BLE001  (the usage ledger must never stop the steering)
            self._trouble("ledger", f"usage per account not recorded: {exc}")

    def _read_due(self, accounts, counters: dict, now: float) -> None:
        due = []
        for account in accounts:
            if account.source != "oauth" or account.provider not in quota.KNOWN or not account.auth_index:
                continue
            if account.disabled and account.name not in self.memory.ours:
                continue  # the user's: nothing to decide about it
            entry = counters.get(account.name) or {}
            why = self.pacer.due(account.name, now, _int(entry.get("success")), _int(entry.get("failed")),
                                 bool(entry.get("unavailable")))
            if why:
                due.append(account)
                self.pacer.read(account.name, now, _int(entry.get("success")), _int(entry.get("failed")),
                                bool(entry.get("unavailable")))
        self.pacer.forget(a.name for a in accounts)
        for q in self._read(due):
            if q.windows or q.account not in self.quotas:
                self.quotas[q.account] = q
            for w in q.windows:
                key = (q.account, w.name)
                self.samples[key] = forecast.add(self.samples.get(key, []), now, w.used_percent)
        listed = {a.name for a in accounts}
        self.quotas = {k: v for k, v in self.quotas.items() if k in listed}
        if due:
            quota.store(self.paths, [self.quotas[a.name] for a in accounts if not a.disabled and a.name in self.quotas])

    def _read(self, accounts) -> list:
        if not accounts:
            return []
        if len(accounts) == 1:
            return [self.read_one(self.client, self.paths, accounts[0])]
        import threading

        results: dict[int, quota.Quota] = {}
        threads = [threading.Thread(target=lambda i=i, a=a: results.__setitem__(i, self.read_one(self.client, self.paths, a)),
                                    daemon=True) for i, a in enumerate(accounts)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + READ_TIMEOUT + 1
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [results[i] for i in sorted(results)]

    def _hint(self, decision, now: float) -> None:
        """Read again at the reset an account is out for, and shortly before the forecast's threshold."""
        for name, verdict in decision.verdicts.items():
            if verdict.state == policy.OUT and verdict.until is not None:
                self.pacer.hint(name, verdict.until)
            for (account, window), samples in self.samples.items():
                if account == name and verdict.state == policy.IN:
                    at = forecast.reach_at(samples, self.settings.threshold)
                    if at is not None and at > now:
                        self.pacer.hint(name, at - self.settings.min_refresh_seconds)

    def _apply(self, decision, now: float) -> policy.Memory:
        ours = dict(decision.memory.ours)
        for account, why, until in decision.take_out:
            try:
                set_disabled(self.client, account, True)
            except FlowgateError as exc:
                ours.pop(account.name, None)  # not out: the next pass tries again
                self._event("failed", f"could not take {account.label or account.name} out: {exc.one_line()}", account)
                continue
            self._event("out", f"{account.provider} {account.label or account.name} out of rotation: {why}"
                        + (f" (until {_clock(until)})" if until else ""), account, until=until)
        for account, why, _ in decision.put_back:
            try:
                set_disabled(self.client, account, False)
            except FlowgateError as exc:
                ours[account.name] = self.memory.ours.get(account.name) or {"until": None, "reason": why}
                self._event("failed", f"could not put {account.label or account.name} back: {exc.one_line()}", account)
                continue
            self._event("in", f"{account.provider} {account.label or account.name} back in rotation: {why}", account)
        return decision.memory._replace(ours=ours)

    def _models(self) -> None:
        """Which models each provider serves, from the kept catalog; remembered, since a catalog read
        while every account of a provider is out no longer lists them."""
        from ..catalog import store

        try:
            seen = store.path(self.paths).stat().st_mtime_ns
        except OSError:
            return
        if seen == self.catalog_seen:
            return  # read again only when a refresh rewrote it
        self.catalog_seen = seen
        catalog = store.read(self.paths)
        for served in (catalog.models if catalog else []):
            for provider in served.providers:
                models = self.models_of.setdefault(str(provider), [])
                if served.id not in models:
                    models.append(served.id)

    def _say_steered(self, steered: dict) -> None:
        if set(steered) == set(self.steered):
            self.steered = steered
            return
        for provider in sorted(_providers(steered) - _providers(self.steered)):
            mine = {m: e for m, e in steered.items() if e["provider"] == provider}
            resets = min((e["resets_at"] for e in mine.values() if e["resets_at"]), default=None)
            routes = ", ".join(f"{m} -> {e['fallback']}" if e["fallback"] else m for m, e in sorted(mine.items()))
            events.record(self.paths, "steer", SERVICE, "exhausted",
                          f"every {provider} account is out" + (f" until {_clock(resets)}" if resets else "")
                          + (f": {routes}" if routes else ""), provider=provider)
        for provider in sorted(_providers(self.steered) - _providers(steered)):
            events.record(self.paths, "steer", SERVICE, "available", f"{provider} has an account in rotation again",
                          provider=provider)
        self.steered = steered

    # ------------------------------------------------------------------ the state file

    def _write(self, accounts, verdicts: dict, steered: dict, now: float) -> None:
        entries = []
        for account in accounts:
            verdict = verdicts.get(account.name) or policy.Verdict(policy.UNKNOWN, "", None)
            q = self.quotas.get(account.name)
            windows = [{"name": w.name, "used_percent": w.used_percent, "resets_at": w.resets_at,
                        "full_at": forecast.full_at(self.samples.get((account.name, w.name), []), w.resets_at)}
                       for w in (q.windows if q else [])]
            entries.append({"name": account.name, "provider": account.provider, "label": account.label,
                            "auth_index": account.auth_index, "state": verdict.state, "reason": verdict.reason,
                            "until": verdict.until, "windows": windows, "plan": q.plan if q else "",
                            "note": q.note if q else ""})
        body = {"threshold": self.settings.threshold, "steering": self.settings.steering, "accounts": entries,
                "steered": steered}
        text = json.dumps(body, sort_keys=True)
        if text == self.last_text and now - self.last_written < REWRITE_SECONDS:
            return  # rewritten unchanged now and then: readers tell a live steward by `updated`
        pool_state.write(self.paths, {"updated": now, **body})
        self.last_text, self.last_written = text, now

    # ------------------------------------------------------------------ events

    def _event(self, result: str, detail: str, account, **extra) -> None:
        try:
            events.record(self.paths, "steer", SERVICE, result, detail, provider=account.provider,
                          file=account.name, **extra)
        except FlowgateError:
            pass

    def _trouble(self, key: str, detail: str) -> None:
        """Said once until it clears: a CLIProxyAPI that is down for a minute is one event, not sixty."""
        if key not in self.troubles:
            self.troubles.add(key)
            try:
                events.record(self.paths, "steer", SERVICE, "error", detail)
            except FlowgateError:
                pass


def _providers(steered: dict) -> set:
    return {entry["provider"] for entry in steered.values()}


def _clock(epoch: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _ledger():
    """contract C (tasks.usage.ledger): the usage per account; absent until that branch is merged."""
    try:
        from ..usage import ledger
    except ImportError:
        return None
    return ledger if hasattr(ledger, "note_counters") else None
