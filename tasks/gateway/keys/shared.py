"""Requests and tokens per minute of member keys counted in Redis, shared by every gateway process
that uses the same Redis (replicas; issue 30).

When LiteLLM's router shares its state through a Redis (`redis.managed` or `redis.url`: the rendered
config's router_settings), the gate counts member keys there too, so a key's `--rpm` and `--tpm`
hold across replicas instead of N times over. Without a Redis (one gateway, the default) the
gate counts in its process (enforce.Window, budget.Budgets) and no Redis is needed.

One script per request (CHECK, one round trip): the key's tokens of the last 60 s (a hash of
per-second sums the usage recorder's writer adds to, off the request path: ADD) against its tpm,
then its requests of the last 60 s (a sorted set of admissions, a sliding window) against its rpm,
the admission added when both pass. Times are Redis's own (TIME), so replicas agree whatever
their clocks. Keys expire a minute after their last use.

Redis down, stopped or slow (no answer within resp.DEADLINE_S): the gate falls back to counting in
its process for as long as Redis fails (a key then gets at most N × rpm with N replicas, as
before shared counters), says so once in its log, and counts in Redis again once it answers (tried
at most every resp.RETRY_S). Fail open to per-process limits, not closed: a limit is a share of the
upstream, not an access right (revocation and expiry come from the key database, which fails closed).
"""

from __future__ import annotations

import asyncio
import itertools
import os

from . import resp
from .enforce import Refusal, shown
from .store import Member

PREFIX = "flowgate:member:"
SPAN_S = 60
CHECK = b"""
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpm > 0 then
  local sums, total, oldest = redis.call('HGETALL', KEYS[2]), 0, nil
  for i = 1, #sums, 2 do
    local second = tonumber(sums[i])
    if second > now_s - 60 then
      total = total + tonumber(sums[i + 1])
      if oldest == nil or second < oldest then oldest = second end
    else
      redis.call('HDEL', KEYS[2], sums[i])
    end
  end
  if total >= tpm then return {2, total, (oldest + 61 - now_s) * 1000} end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - 60000)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, rpm, tonumber(first[2]) + 60000 - now_ms}
  end
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return {0, 0, 0}
"""
ADD = b"""
local t = redis.call('TIME')
redis.call('HINCRBY', KEYS[1], t[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 61)
return 1
"""


def _sha(script: bytes) -> str:
    import hashlib

    return hashlib.sha1(script).hexdigest()


CHECK_SHA, ADD_SHA = _sha(CHECK), _sha(ADD)


def keys_of(name: str) -> tuple[str, str]:
    return f"{PREFIX}{name}:requests", f"{PREFIX}{name}:tokens"


class Counters:
    """The shared counts of one gateway process; `client` a resp.Client (tests give their own)."""

    def __init__(self, client: resp.Client, log=print):
        self.client, self.log = client, log
        self.ids = itertools.count()
        self.tag = f"{os.getpid()}-{os.urandom(3).hex()}-"  # admissions of every process stay apart
        self.loop = None
        self.failing = False

    async def take(self, member: Member) -> Refusal | None:
        """None when the key is under its rpm and tpm across the replicas (the request is counted);
        a 429 when it is not. resp.Down when Redis cannot say: the caller counts on its own."""
        self.loop = asyncio.get_running_loop()  # where the writer thread's token counts are sent
        rq, tk = keys_of(member.name)
        try:
            status, count, wait_ms = await self.client.call(
                "EVALSHA", CHECK_SHA, 2, rq, tk, member.rpm or 0, member.tpm or 0, f"{self.tag}{next(self.ids)}")
        except resp.ReplyError as exc:  # NOSCRIPT (SCRIPT FLUSH), or a refusal (a read-only replica, OOM)
            self.client.close()
            self.client.back_off(f"Redis refused the count: {exc}")
            self._down(str(exc))
            raise resp.Down(str(exc)) from None
        except resp.Down as exc:
            self._down(str(exc))
            raise
        if self.failing:
            self.failing = False
            self.log("flowgate keys: Redis answers again: rpm/tpm of member keys are shared by the replicas again")
        if status == 0:
            return None
        wait = max(1, -(-int(wait_ms) // 1000))
        if status == 1:
            what = f"its limit of {member.rpm} requests per minute"
        else:
            what = f"its limit of {member.tpm} tokens per minute ({count} in the last minute)"
        return Refusal(429, f"the key of {shown(member.name)} is over {what}: retry in {wait} s",
                       [(b"retry-after", str(wait).encode())])

    def _down(self, why: str) -> None:
        if not self.failing:
            self.failing = True
            self.log(f"flowgate keys: rpm/tpm of member keys are counted in each process until Redis answers ({why})")

    def add_tokens(self, used: dict[str, int]) -> None:
        """From the usage recorder's writer thread: the tokens each member's requests took (in + out).
        Sent on the gate's loop; what Redis does not take is counted in the usage database only."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        for name, tokens in used.items():
            if tokens > 0:
                asyncio.run_coroutine_threadsafe(self._add(name, tokens), loop)

    async def _add(self, name: str, tokens: int) -> None:
        try:
            await self.client.call("EVALSHA", ADD_SHA, 1, keys_of(name)[1], int(tokens))
        except (resp.Down, resp.ReplyError):
            pass  # the check says so (it fails too) and the tpm falls back to the usage database's sums


def redis_settings(config: dict) -> dict | None:
    """{host, port, password, tls} of the Redis LiteLLM's router shares its state through, from the
    rendered config; None without one. `os.environ/NAME` is resolved as LiteLLM resolves it."""
    router = config.get("router_settings") if isinstance(config, dict) else None
    if not isinstance(router, dict) or not router.get("redis_host"):
        return None
    password = router.get("redis_password")
    if isinstance(password, str) and password.startswith("os.environ/"):
        password = os.environ.get(password[len("os.environ/"):])
    extra = router.get("cache_kwargs") if isinstance(router.get("cache_kwargs"), dict) else {}
    return {"host": str(router["redis_host"]), "port": int(router.get("redis_port") or 6379),
            "password": str(password) if password else None, "tls": bool(extra.get("ssl"))}


def from_config(path: str | None) -> Counters | None:
    """The process's shared counters when its config (CONFIG_FILE_PATH) names a Redis; else None."""
    try:
        import yaml

        with open(path or "", encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
        found = redis_settings(config)
    except Exception:  # noqa: BLE001  (unreadable: LiteLLM would not have started; count in process)
        return None
    if found is None:
        return None
    return Counters(resp.Client(found["host"], found["port"], found["password"], found["tls"], scripts=(CHECK, ADD)))


_COUNTERS: list = []


def counters() -> Counters | None:
    """This process's shared counters (made at first use from CONFIG_FILE_PATH), or None."""
    if not _COUNTERS:
        _COUNTERS.append(from_config(os.environ.get("CONFIG_FILE_PATH")))
    return _COUNTERS[0]


def tokens_used(rows) -> None:
    """The usage recorder's rows of one batch: their members' tokens, added to the shared counts."""
    shared = _COUNTERS[0] if _COUNTERS else None
    if shared is None:
        return
    try:  # in the recorder's writer thread: nothing here may stop it (a loop closing at shutdown, say)
        used: dict[str, int] = {}
        for row in rows:
            name = row.get("member")
            if name:
                used[name] = used.get(name, 0) + int(row.get("tokens_in") or 0) + int(row.get("tokens_out") or 0)
        shared.add_tokens(used)
    except Exception:  # noqa: BLE001  (the tpm then holds to the usage database's sums while Redis fails)
        pass
