"""tasks.accounts.codex_import: Codex CLI's auth.json as a codex account file."""

from __future__ import annotations

import json
import stat

import pytest

from tasks.accounts.codex_import import codex_auth_path, import_codex
from tasks.base.errors import FlowgateError
from tests.fakes.codex_cli import auth_json, token_values, write_auth


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def account_files(paths) -> list:
    return sorted(p.name for p in paths.auths_dir.iterdir()) if paths.auths_dir.exists() else []


def test_valid_import_has_the_binarys_fields_and_private_modes(paths, tmp_path):
    source = write_auth(tmp_path / "auth.json", auth_json("dev@example.com", "acct-1"))
    result = import_codex(paths, str(source))
    assert result.action == "imported" and result.email == "dev@example.com"
    assert result.file == paths.auths_dir / "codex-dev@example.com.json"
    data = json.loads(result.file.read_text())
    original = json.loads(source.read_text())["tokens"]
    assert data == {"type": "codex", "id_token": original["id_token"], "access_token": original["access_token"],
                    "refresh_token": original["refresh_token"], "account_id": "acct-1", "email": "dev@example.com",
                    "last_refresh": "2026-05-01T10:00:00Z", "expired": "2030-03-17T17:46:40Z"}
    assert mode(result.file) == 0o600 and mode(paths.auths_dir) == 0o700


def test_email_and_account_id_come_from_the_id_token_claims(paths, tmp_path):
    source = write_auth(tmp_path / "auth.json", auth_json("claims@example.com", "acct-claims", account_id_top_level=False))
    result = import_codex(paths, str(source))
    data = json.loads(result.file.read_text())
    assert (data["email"], data["account_id"]) == ("claims@example.com", "acct-claims")


def test_codex_home_is_the_default_source(paths, tmp_path):
    write_auth(tmp_path / "codexhome" / "auth.json", auth_json("home@example.com"))
    assert codex_auth_path(None, {"CODEX_HOME": str(tmp_path / "codexhome")}) == tmp_path / "codexhome" / "auth.json"
    assert codex_auth_path(None, {}).name == "auth.json" and codex_auth_path(None, {}).parent.name == ".codex"
    assert import_codex(paths, None, {"CODEX_HOME": str(tmp_path / "codexhome")}).email == "home@example.com"


def test_two_accounts_get_two_files(paths, tmp_path):
    import_codex(paths, str(write_auth(tmp_path / "a.json", auth_json("a@example.com", "acct-a"))))
    import_codex(paths, str(write_auth(tmp_path / "b.json", auth_json("b@example.com", "acct-b"))))
    assert account_files(paths) == ["codex-a@example.com.json", "codex-b@example.com.json"]
    assert all(mode(p) == 0o600 for p in paths.auths_dir.iterdir())


def test_same_account_twice_is_up_to_date_then_updated_in_place(paths, tmp_path):
    source = write_auth(tmp_path / "auth.json", auth_json("dev@example.com"))
    first = import_codex(paths, str(source))
    mtime = first.file.stat().st_mtime_ns
    assert import_codex(paths, str(source)).action == "up-to-date"
    assert first.file.stat().st_mtime_ns == mtime  # not rewritten
    newer = auth_json("dev@example.com", last_refresh="2026-06-01T10:00:00Z")
    write_auth(source, newer)
    assert import_codex(paths, str(source)).action == "updated"
    assert account_files(paths) == ["codex-dev@example.com.json"]
    assert json.loads(first.file.read_text())["refresh_token"] == newer["tokens"]["refresh_token"]


def test_an_existing_file_of_that_account_is_found_by_email_not_by_name(paths, tmp_path):
    """Mainline names codex files codex-<hash8>-<email>-<plan>.json; the binary may add fields."""
    paths.auths_dir.mkdir(parents=True)
    hashed = paths.auths_dir / "codex-1a2b3c4d-dev@example.com-plus.json"
    hashed.write_text(json.dumps({"type": "codex", "email": "dev@example.com", "disabled": True,
                                  "last_refresh": "2026-04-01T00:00:00Z"}))
    result = import_codex(paths, str(write_auth(tmp_path / "auth.json", auth_json("dev@example.com"))))
    assert (result.action, result.file) == ("updated", hashed)
    data = json.loads(hashed.read_text())
    assert data["disabled"] is True and data["last_refresh"] == "2026-05-01T10:00:00Z"  # kept / updated
    assert account_files(paths) == [hashed.name]


def test_tokens_refreshed_by_the_binary_since_are_never_replaced_by_older_ones(paths, tmp_path):
    source = write_auth(tmp_path / "auth.json", auth_json("dev@example.com"))
    target = import_codex(paths, str(source)).file
    data = json.loads(target.read_text())
    data.update(last_refresh="2026-07-01T00:00:00Z", refresh_token="rotated-by-binary")
    target.write_text(json.dumps(data))
    result = import_codex(paths, str(source))
    assert result.action == "up-to-date" and "refreshed later" in result.why
    assert json.loads(target.read_text())["refresh_token"] == "rotated-by-binary"


def _without(path: tuple):
    data = auth_json()
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


@pytest.mark.parametrize("content, expected", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({"OPENAI_API_KEY": "sk-x"}, "has no `tokens` field (it holds an API key login"),
    (_without(("tokens", "refresh_token")), "has no `tokens.refresh_token` field"),
    (_without(("tokens", "access_token")), "has no `tokens.access_token` field"),
    (_without(("tokens", "id_token")), "has no `tokens.id_token` field"),
    ({"tokens": {"id_token": "not-a-jwt", "access_token": "a", "refresh_token": "r"}}, "is not a JWT"),
])
def test_malformed_or_partial_auth_json_names_the_problem_and_writes_nothing(paths, tmp_path, content, expected):
    source = write_auth(tmp_path / "auth.json", content)
    with pytest.raises(FlowgateError) as err:
        import_codex(paths, str(source))
    assert expected in err.value.message and str(source) in err.value.message
    assert "codex login" in err.value.hint
    assert account_files(paths) == []
    assert not paths.events.exists()


def test_missing_file_says_how_to_create_it(paths, tmp_path):
    with pytest.raises(FlowgateError) as err:
        import_codex(paths, str(tmp_path / "nope.json"))
    assert "does not exist" in err.value.message and "--file" in err.value.hint


def test_events_name_the_account_never_a_token(paths, tmp_path):
    data = auth_json("dev@example.com")
    import_codex(paths, str(write_auth(tmp_path / "auth.json", data)))
    text = paths.events.read_text()
    event = json.loads(text.splitlines()[-1])
    assert (event["event"], event["result"], event["detail"], event["provider"]) == ("import", "imported", "dev@example.com", "codex")
    assert not any(token in text for token in token_values(data))


@pytest.mark.parametrize("kind", ["fifo", "huge", "deep"])
def test_an_odd_auth_json_is_refused_in_one_line(paths, tmp_path, kind):
    import os

    auth = tmp_path / "auth.json"
    if kind == "fifo":
        os.mkfifo(auth)
    elif kind == "huge":
        with open(auth, "wb") as fh:
            fh.truncate(300 << 20)
    else:
        auth.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FlowgateError) as info:
        import_codex(paths, str(auth))
    said = {"fifo": "is a FIFO, not a regular file", "huge": "is larger than 1024 KiB", "deep": "nested too deeply"}[kind]
    assert said in info.value.message and "\n" not in info.value.message
    assert not paths.auths_dir.exists() or not list(paths.auths_dir.iterdir())
