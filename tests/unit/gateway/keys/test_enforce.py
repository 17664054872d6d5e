"""tasks.gateway.keys.enforce: 401 for an unknown, revoked or expired key, 403 outside the patterns,
429 over the requests per minute with retry-after, 503 when the database cannot be read."""

from __future__ import annotations

from tasks.gateway.keys import enforce
from tasks.gateway.keys.book import Unavailable
from tasks.gateway.keys.store import Member


def member(**kw):
    base = dict(name="ana", revoked=None, expires=None, models=(), rpm=None, tpm=None, budget=None, period=None)
    return Member(**{**base, **kw})


class Book:
    def __init__(self, known=None, broken=None):
        self.known, self.broken = known or {}, broken

    def find(self, key):
        if self.broken:
            raise Unavailable(self.broken)
        return self.known.get(key)


def test_admission():
    book = Book({"k": member(), "r": member(revoked=1.0), "e": member(expires=100.0)})
    assert enforce.admit(book, ("x", "k")).name == "ana"
    assert enforce.admit(book, ("x",)).status == 401
    assert "revoked" in enforce.admit(book, ("r",)).message
    assert "expired" in enforce.admit(book, ("e",), now=100.0).message
    assert enforce.admit(book, ("e",), now=99.0).name == "ana"
    refused = enforce.admit(Book(broken="the key database is corrupt"), ("k",))
    assert refused.status == 503 and "corrupt" in refused.message


def test_models_by_pattern():
    limited = member(models=("gpt-5*", "claude-sonnet-4-6"))
    assert enforce.model_refusal(limited, "gpt-5-codex") is None
    assert enforce.model_refusal(limited, "claude-sonnet-4-6") is None
    assert enforce.model_refusal(limited, "claude-opus-4-1").status == 403
    assert enforce.model_refusal(limited, None).status == 403
    assert enforce.model_refusal(member(), "anything") is None


def test_requests_per_minute_slide_and_say_when_to_retry():
    now = [1000.0]
    window = enforce.Window(lambda: now[0])
    limited = member(rpm=2)
    assert window.take(limited) is None
    now[0] += 10
    assert window.take(limited) is None
    refused = window.take(limited)
    assert refused.status == 429 and dict(refused.headers)[b"retry-after"] == b"50"
    now[0] += 50  # the first request left the window
    assert window.take(limited) is None
    assert all(window.take(member(name="bo")) is None for _ in range(100))  # no rpm: no limit
