"""tasks.gateway.keys.shared and .resp against a real redis-server: rpm and tpm counted across two
processes' counters, the retry-after Redis's clock gives, and Down (never a hang) when Redis is
stopped, frozen or refuses the password, with a new connection once it answers again."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess

import pytest

from tasks.gateway.keys import resp, shared
from tasks.gateway.keys.store import Member
from tests.support import free_port, wait_for

PASSWORD = "unit-redis-secret"


def member(**kw):
    base = dict(name="ana", revoked=None, expires=None, models=(), rpm=None, tpm=None, budget=None, period=None)
    return Member(**{**base, **kw})


class Redis:
    def __init__(self, tmp_path):
        self.port, self.dir, self.proc = free_port(), tmp_path, None

    def start(self):
        binary = shutil.which("redis-server")
        if not binary:
            pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass",
                                      PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from tasks.stack.watch.redisping import ping

        wait_for(lambda: ping("127.0.0.1", self.port, PASSWORD) == "PONG", what="redis-server answering PING")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path)
    server.start()
    yield server
    if server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


def counters(redis, password=PASSWORD, logged=None):
    client = resp.Client("127.0.0.1", redis.port, password, scripts=(shared.CHECK, shared.ADD))
    return shared.Counters(client, log=(logged.append if logged is not None else lambda line: None))


def run(coro):
    return asyncio.run(coro)


def test_requests_per_minute_hold_across_processes_and_say_when_to_retry(redis):
    async def go():
        one, two = counters(redis), counters(redis)
        limited = member(rpm=3)
        answers = [await c.take(limited) for c in (one, two, one, two, one)]
        other = await two.take(member(name="bo", rpm=1))
        return answers, other

    answers, other = run(go())
    assert answers[:3] == [None, None, None]
    refused = answers[3]
    assert refused.status == 429 and "3 requests per minute" in refused.message
    assert 1 <= int(dict(refused.headers)[b"retry-after"]) <= 60
    assert answers[4].status == 429  # a refused request takes none, and is refused again
    assert other is None  # keys are counted apart


def test_tokens_per_minute_are_summed_across_processes(redis):
    async def go():
        one, two = counters(redis), counters(redis)
        limited = member(name="fay", tpm=100)
        first = await one.take(limited)
        await one._add("fay", 60)
        under = await two.take(limited)
        await two._add("fay", 50)
        return first, under, await one.take(limited)

    first, under, over = run(go())
    assert first is None and under is None
    assert over.status == 429 and "100 tokens per minute (110 in the last minute)" in over.message
    assert 1 <= int(dict(over.headers)[b"retry-after"]) <= 61


def test_tokens_from_the_recorders_rows_reach_redis(redis):
    async def go():
        ours = counters(redis)
        shared._COUNTERS[:] = [ours]
        try:
            await ours.take(member(name="gus", tpm=10))  # the gate's loop, known from here on
            await asyncio.to_thread(shared.tokens_used, [{"member": "gus", "tokens_in": 7, "tokens_out": 5},
                                                         {"member": None, "tokens_in": 99}])

            async def refused():
                return await ours.take(member(name="gus", tpm=10))

            for _ in range(100):
                why = await refused()
                if why is not None:
                    return why
                await asyncio.sleep(0.01)
        finally:
            shared._COUNTERS.clear()

    why = run(go())
    assert why is not None and "12 in the last minute" in why.message


@pytest.mark.parametrize("fault", ["stopped", "frozen", "wrong password"])
def test_redis_that_cannot_answer_is_down_within_the_deadline_and_comes_back(redis, fault):
    logged = []
    limited = member(rpm=5)

    async def go():
        ours = counters(redis, password="wrong" if fault == "wrong password" else PASSWORD, logged=logged)
        if fault != "wrong password":
            assert await ours.take(limited) is None
        if fault == "stopped":
            redis.stop()
        elif fault == "frozen":
            os.kill(redis.proc.pid, signal.SIGSTOP)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(resp.Down):
            await ours.take(limited)
        took = loop.time() - began
        with pytest.raises(resp.Down):  # at once, without trying again, for RETRY_S
            await ours.take(limited)
        if fault == "wrong password":
            return took, None
        if fault == "stopped":
            redis.start()
        else:
            os.kill(redis.proc.pid, signal.SIGCONT)
        ours.client.down_until = 0.0  # RETRY_S passed
        return took, await ours.take(limited)

    took, again = run(go())
    assert took < 1.0  # the deadline (50 ms), not a hang
    assert any("counted in each process" in line for line in logged)
    if fault != "wrong password":
        assert again is None and any("answers again" in line for line in logged)


def test_settings_come_from_the_rendered_config(monkeypatch):
    monkeypatch.setenv("TEAM_REDIS", "s3cret")
    found = shared.redis_settings({"router_settings": {"redis_host": "cache", "redis_port": 6380,
                                                       "redis_password": "os.environ/TEAM_REDIS",
                                                       "cache_kwargs": {"ssl": True}}})
    assert found == {"host": "cache", "port": 6380, "password": "s3cret", "tls": True}
    assert shared.redis_settings({"router_settings": {"routing_strategy": "simple-shuffle"}}) is None
    assert shared.redis_settings({}) is None


def test_replies_are_parsed_whole_or_not_at_all():
    assert resp.parse(b"*3\r\n:0\r\n:5\r\n:-1\r\n") == ([0, 5, -1], 17)
    assert resp.parse(b"*3\r\n:0\r\n:5\r\n") is None
    assert resp.parse(b"$5\r\nhel") is None
    assert resp.parse(b"$5\r\nhello\r\n+OK\r\n") == (b"hello", 11)
    assert isinstance(resp.parse(b"-NOSCRIPT no\r\n")[0], resp.ReplyError)
    with pytest.raises(ValueError):
        resp.parse(b"HTTP/1.1 200 OK\r\n")


def test_scripts_flushed_from_redis_are_loaded_again_on_a_new_connection(redis):
    async def go():
        ours = counters(redis)
        assert await ours.take(member(rpm=5)) is None
        await ours.client.call("SCRIPT", "FLUSH")
        with pytest.raises(resp.Down, match="NOSCRIPT"):
            await ours.take(member(rpm=5))
        ours.client.down_until = 0.0  # RETRY_S passed
        return await ours.take(member(rpm=5))

    assert run(go()) is None


def test_the_writer_thread_is_never_stopped_by_the_counts(redis):
    ours = counters(redis)
    shared._COUNTERS[:] = [ours]
    try:
        loop = asyncio.new_event_loop()
        ours.loop = loop
        loop.close()  # the gateway shutting down while a batch is written
        shared.tokens_used([{"member": "ana", "tokens_in": 3, "tokens_out": 1}])
    finally:
        shared._COUNTERS.clear()
