from tasks.pool.pace import Pacer


def test_first_read_then_nothing_until_something_moves():
    p = Pacer(refresh=60, min_refresh=2)
    assert p.due("a", 100, 0, 0, False) == "first read"
    p.read("a", 100, 0, 0, False)
    assert p.due("a", 110, 0, 0, False) is None
    assert p.due("a", 160, 0, 0, False) == "refresh"


def test_activity_makes_it_due_but_never_sooner_than_the_minimum():
    p = Pacer(refresh=60, min_refresh=2)
    p.read("a", 100, 5, 0, False)
    assert p.due("a", 101, 6, 0, False) is None  # moved, but within min_refresh
    assert p.due("a", 102, 6, 0, False) == "it served requests"
    assert p.due("a", 102, 5, 1, False) == "a request failed"
    assert p.due("a", 102, 5, 0, True) == "a request failed"  # the binary marks it unavailable (429)


def test_hints_for_the_reset_and_the_forecast():
    p = Pacer(refresh=60, min_refresh=2)
    p.read("a", 100, 0, 0, False)
    p.hint("a", 130)
    p.hint("a", 120)  # the earliest wins
    assert p.due("a", 119, 0, 0, False) is None
    assert p.due("a", 120, 0, 0, False) == "forecast or reset"
    p.read("a", 120, 0, 0, False)
    assert p.due("a", 125, 0, 0, False) is None  # a read clears the hint


def test_forget_drops_removed_accounts():
    p = Pacer(refresh=60, min_refresh=2)
    p.read("a", 1, 0, 0, False)
    p.read("b", 1, 0, 0, False)
    p.forget(["b"])
    assert set(p.reads) == {"b"}
    assert Pacer(refresh=5, min_refresh=30).min_refresh == 5
