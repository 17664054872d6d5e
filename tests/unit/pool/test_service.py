from tasks.config.accountspec import steering
from tasks.pool import service


def stack(**accounts):
    return {"cliproxy": {"enabled": True, "host": "127.0.0.1", "port": 8317}, "accounts": accounts}


def test_wanted_with_cliproxy_and_steering_or_the_usage_queue():
    assert service.wanted(stack())
    assert not service.wanted(stack(steering=False))
    assert service.wanted(stack(steering=False, read_usage_queue=True))
    assert not service.wanted({"cliproxy": {"enabled": False}}) and not service.wanted(None)


def test_an_edit_of_accounts_or_cliproxys_address_is_a_restart_input(paths):
    base = service.launch(paths, stack()).inputs_hash
    assert service.launch(paths, stack()).inputs_hash == base
    assert service.launch(paths, stack(threshold=80)).inputs_hash != base
    moved = stack()
    moved["cliproxy"]["port"] = 9000
    assert service.launch(paths, moved).inputs_hash != base
    argv = service.launch(paths, stack()).argv
    assert argv[argv.index("--") + 1:][1:] == ["-m", "tasks.pool", "--home", str(paths.home)]
    assert "--ready" in argv and argv[argv.index("--ready") + 1] == "worker"


def test_not_wanted_and_not_running_is_current(paths):
    assert service.is_current(paths, stack(steering=False))
    assert not service.is_current(paths, stack())


def test_the_sections_values_with_defaults_and_bad_values_ignored():
    assert steering(None) == steering({}) == steering({"accounts": {"threshold": "x"}})
    got = steering({"accounts": {"threshold": 80, "refresh_seconds": 10, "min_refresh_seconds": 30}})
    assert got.threshold == 80.0 and got.min_refresh_seconds == 10.0  # never above refresh


def test_steering_turned_off_puts_the_stewards_accounts_back(paths, monkeypatch):
    import time

    from tasks.accounts import pool_state
    from tasks.accounts import management

    patched = []

    class Client:
        def request(self, method, route, *, query=None, body=None):
            patched.append(body)
            return {}

    monkeypatch.setattr(management.Management, "for_stack", classmethod(lambda cls, *a, **k: Client()))
    pool_state.write(paths, {"updated": time.time(), "steered": {"gpt-5.5": {"provider": "codex"}}, "accounts": [
        {"name": "a.json", "provider": "codex", "label": "a@x", "auth_index": "ia", "state": "out"},
        {"name": "b.json", "provider": "codex", "label": "b@x", "state": "disabled-by-user"}]})
    assert not service.is_current(paths, stack(steering=False))  # `up` has accounts to put back
    assert service.ensure(paths, stack(steering=False)).action == "disabled"
    assert service.is_current(paths, stack(steering=False))
    assert patched == [{"name": "a.json", "disabled": False, "auth_index": "ia"}]  # never the user's
    state = pool_state.read(paths)
    assert state["steered"] == {} and state["steering"] is False and state["accounts"] == []
