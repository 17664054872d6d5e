"""Broken configs through the real `doit` command line: one clear message each, exit non-zero,
no traceback, and nothing under .router/ changed (doit's own state db aside)."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from tests.conftest import make_home, run_doit

BASE = "config/flowgate.yaml"
LOCAL = "config/local.yaml"

DIRECT = "models:\n  - {name: d, via: direct, model: openai/gpt-4o, "
DIRECT_TAIL = "clients: {codex: {model: d, fast_model: d}, claude: {model: d, fast_model: d}}\nprofiles: null\n"

# (id, file, content, text that must appear in the output: the key path or the YAML position);
# content "/dev/..." makes the file a symlink to that device.
BROKEN = [
    ("syntax-error", LOCAL, "litellm:\n  port: [4000\n", "config/local.yaml:3:1: YAML syntax error"),
    ("tab-indent", LOCAL, "litellm:\n\tport: 4000\n", "config/local.yaml:2:1: YAML syntax error"),
    ("duplicate-key", LOCAL, "profile: cost\nprofile: reliable\n", "duplicate key 'profile'"),
    ("empty-base", BASE, "", "config/flowgate.yaml is empty"),
    ("comments-only-base", BASE, "# nothing\n", "config/flowgate.yaml is empty"),
    ("list-top-level", LOCAL, "- a\n- b\n", "expected a mapping at the top level"),
    ("scalar-top-level", BASE, "just text\n", "expected a mapping at the top level"),
    ("unknown-top-key", LOCAL, "modles: []\n", "modles: unknown key (did you mean 'models'?)"),
    ("unknown-service-key", LOCAL, "litellm:\n  prot: 4001\n", "litellm.prot: unknown key (did you mean 'port'?)"),
    ("unknown-release-key", LOCAL, "cliproxy:\n  release:\n    verison: v1\n", "cliproxy.release.verison: unknown key (did you mean 'version'?)"),
    ("unknown-model-key", LOCAL, "models:\n  - name: a\n    apikey: x\n", "models[0].apikey: unknown key"),
    ("unknown-profile-key", LOCAL, "profiles:\n  cost:\n    router: {}\n", "profiles.cost.router: unknown key"),
    ("port-zero", LOCAL, "litellm: {port: 0}\n", "litellm.port: expected a port number from 1 to 65535, found int 0"),
    ("port-70000", LOCAL, "cliproxy: {port: 70000}\n", "cliproxy.port: expected a port number from 1 to 65535, found int 70000"),
    ("port-string", LOCAL, "litellm: {port: '4000'}\n", "litellm.port: expected a port number from 1 to 65535, found str '4000'"),
    ("same-port-twice", LOCAL, "cliproxy: {port: 4000}\n", "cliproxy.port: is the same as litellm.port"),
    # item 25: the clash is shown where the user set the port, not at the shipped file's other port
    ("same-port-litellm-moved", LOCAL, "litellm: {port: 8317}\n",
     "config/local.yaml:1: litellm.port: is the same as cliproxy.port (8317)"),
    ("bool-as-int", LOCAL, "litellm_settings: {num_retries: true}\n", "litellm_settings.num_retries: expected an integer"),
    ("wrong-type-in-profile", LOCAL, "profiles:\n  cost:\n    litellm_settings:\n      num_retries: many\n",
     "profiles.cost.litellm_settings.num_retries: expected an integer"),
    ("unknown-active-profile", LOCAL, "profile: turbo\n", "profile: unknown profile 'turbo'"),
    ("nothing-serves", LOCAL, "cliproxy: {enabled: false}\n", "models: is empty and cliproxy.enabled is false"),
    ("client-model-not-a-name", LOCAL, "clients:\n  claude: {fast_model: 7}\n", "clients.claude.fast_model: expected"),
    ("models-not-list", LOCAL, "models: {name: a}\n", "models: expected a list, found a mapping"),
    ("model-without-name", LOCAL, "models:\n  - via: cliproxy\n", "models[0].name: missing"),
    ("bad-via", LOCAL, "models:\n  - {name: a, via: carrier-pigeon}\n", "models[0].via: expected one of cliproxy, direct"),
    ("duplicate-model", LOCAL, "models:\n  - {name: a}\n  - {name: a}\n", "models[1].name: duplicate model name 'a'"),
    ("public-host", LOCAL, "litellm: {host: 0.0.0.0}\n", "litellm.host: '0.0.0.0' is not a loopback address"),
    ("managed-key", LOCAL, "general_settings: {master_key: sk-1234}\n", "general_settings.master_key: is managed by FlowGate"),
    ("missing-env-var", LOCAL,
     "models:\n  - {name: d, via: direct, model: openai/gpt-4o, api_key_env: FG_SURELY_UNSET_VAR}\n"
     "clients: {codex: {model: d, fast_model: d}, claude: {model: d, fast_model: d}}\nprofiles: null\n",
     "models[0].api_key_env: environment variable FG_SURELY_UNSET_VAR is not set"),
    ("missing-key-file", LOCAL,
     "models:\n  - {name: d, via: direct, model: openai/gpt-4o, api_key_file: keys/none.txt}\n"
     "clients: {codex: {model: d, fast_model: d}, claude: {model: d, fast_model: d}}\nprofiles: null\n",
     "models[0].api_key_file:"),
    ("missing-redis-password-file", LOCAL, "redis: {url: 'redis://127.0.0.1:6399', password_file: keys/redis.txt}\n",
     "redis.password_file: "),
    ("not-utf8", LOCAL, b"profile: \xff\xfe\n", "not UTF-8"),
    # Hostile input (issue 8). 1: nine levels of aliased lists once took 2.3 GB.
    ("alias-bomb", LOCAL, "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")),
     "config/local.yaml:2:8: YAML syntax error: alias *a names a list or mapping"),
    ("device-as-config", LOCAL, "/dev/zero", "config/local.yaml: not a regular file (a character device)"),
    # 12: 50 MB of unknown keys took 126 s and 4.5 GB; now the report stops at 50 problems.
    ("many-unknown-keys", LOCAL, "litellm:\n" + "".join(f"  unknown{i}: 1\n" for i in range(500)),
     "the config is invalid (stopped after the first 50 problems)"),
    # 4: values that passed check and crashed up.
    ("env-name-with-equals", LOCAL, "litellm:\n  env: {'A=B': x}\n",
     "litellm.env.A=B: expected an environment variable name"),
    ("nul-in-value", LOCAL, 'litellm:\n  env: {A: "x\\0y"}\n', "litellm.env.A: contains a NUL character"),
    ("date-in-model-info", LOCAL, "models:\n  - name: gpt-5\n    model_info: {released: 2024-01-01}\n",
     "models[0].model_info.released: is a YAML date (2024-01-01); quote it"),
    ("timestamp-in-settings", LOCAL, "cliproxy:\n  settings:\n    routing: {since: 2001-12-14 21:59:43}\n",
     "cliproxy.settings.routing.since: is a YAML timestamp"),
    # 5: a name with a newline once added top-level keys to the rendered LiteLLM config.
    ("profile-name-newline", LOCAL, 'profile: "cost\\ninclude: /etc/passwd"\n',
     "profile: expected a profile name (letters, digits, _ and -"),
    ("profiles-key-newline", LOCAL, 'profiles:\n  "x\\ninclude: y": {}\n', "expected a profile name"),
    ("model-name-newline", LOCAL, 'models:\n  - name: "a\\nb"\n', "models[0].name: expected a model name"),
    ("escape-sequence-in-key", LOCAL, 'litellm:\n  "\\e[2Jgone": 1\n', "litellm.\\x1b[2Jgone: unknown key"),
    # 6: .nan / .inf as timeouts (down never escalated to SIGKILL; up waited forever).
    ("nan-timeout", LOCAL, "litellm: {stop_timeout: .nan}\n", "litellm.stop_timeout: is nan: numbers must be finite"),
    ("inf-timeout", LOCAL, "cliproxy: {start_timeout: .inf}\n", "cliproxy.start_timeout: is inf: numbers must be finite"),
    ("huge-timeout", LOCAL, "litellm: {start_timeout: 1000000000}\n", "litellm.start_timeout: expected a number from 1 to 3600, found int"),
    ("nan-in-passthrough", LOCAL, "router_settings: {retry_after: .nan}\n", "router_settings.retry_after: is nan"),
    # 11: key files must be regular, single-line files.
    ("key-file-device", LOCAL, DIRECT + "api_key_file: /dev/zero}\n" + DIRECT_TAIL,
     "models[0].api_key_file: /dev/zero is not a regular file"),
    # 15: typos in pass-through settings, against the pinned versions' keys.
    ("litellm-settings-typo", LOCAL, "litellm_settings: {num_retrys: 2}\n",
     "litellm_settings.num_retrys: unknown key: LiteLLM 1.108.14 does not accept it (did you mean 'num_retries'?"),
    ("router-settings-typo", LOCAL, "router_settings: {routing_strategie: simple-shuffle}\n",
     "router_settings.routing_strategie: unknown key: LiteLLM 1.108.14 does not accept it (did you mean 'routing_strategy'?"),
    ("general-settings-typo-in-profile", LOCAL, "profiles:\n  cost:\n    general_settings: {disable_spend_log: true}\n",
     "profiles.cost.general_settings.disable_spend_log: unknown key"),
    ("cliproxy-settings-typo", LOCAL, "cliproxy:\n  settings: {request-retyr: 2}\n",
     "cliproxy.settings.request-retyr: unknown key: CLIProxyAPI router-for-me/CLIProxyAPI v7.2.140 does not accept it "
     "(did you mean 'request-retry'?"),
    ("unchecked-settings-bad-section", LOCAL, "unchecked_settings: [litellm.foo]\n",
     "unchecked_settings[0]: names no pass-through section"),
]


def snapshot(router):
    out = {}
    for path in sorted(router.rglob("*")):
        if path.name.startswith("doit.sqlite3"):
            continue  # doit's own state db: doit opens it on every run
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(router))] = (digest, st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture(scope="module")
def rendered_home(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("rendered") / "home")
    result = run_doit(home, "render")
    assert result.returncode == 0, result.output
    return home


@pytest.mark.parametrize("case_id,file,content,expected", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_config_fails_cleanly(tmp_path, rendered_home, case_id, file, content, expected):
    home = tmp_path / "home"
    shutil.copytree(rendered_home, home, copy_function=shutil.copy2)
    before = snapshot(home / ".router")
    target = home / file
    if isinstance(content, str) and content.startswith("/dev/"):
        target.symlink_to(content)
    else:
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    for command in ("render", "check"):
        result = run_doit(home, command)
        assert result.returncode != 0, result.output
        assert expected in result.stderr, result.output
        assert "Traceback" not in result.output
        assert "\x1b" not in result.output  # control characters are never printed raw
    assert snapshot(home / ".router") == before


def test_fresh_home_with_broken_config_generates_nothing(home):
    (home / LOCAL).write_text("litellm: {port: 0}\n")
    result = run_doit(home, "render")
    assert result.returncode == 1 and "litellm.port" in result.stderr
    assert not (home / ".router" / "secrets").exists()
    assert not (home / ".router" / "state").exists()


def test_check_warns_about_a_fallback_no_account_serves(doit, paths):
    from tests.catalog_support import keep

    keep(paths, "codex-plus")  # what `doit models` kept: no claude account
    paths.local_config.write_text("router_settings:\n  fallbacks:\n    - gpt-5.5: [gpt-9]\n")
    result = doit("check")
    assert result.returncode == 0, result.output  # a warning, not an error: the catalog changes by itself
    assert "warning: gpt-9 is not served now (named by profile default;" in result.stdout
    assert "warning: claude-sonnet-4-6 is not served now (named by profile reliable" in result.stdout


def test_check_warns_about_rpm_the_routing_strategy_ignores(home):
    local = home / "config" / "local.yaml"
    local.write_text("models:\n  - {name: gpt-5, params: {rpm: 6}}\nprofiles: null\n"
                     "clients: {codex: {model: gpt-5, fast_model: gpt-5}, claude: {model: gpt-5, fast_model: gpt-5}}\n")
    result = run_doit(home, "check")
    assert result.returncode == 0, result.output
    assert "warning: models[0] (gpt-5): rpm set, but not enforced under routing_strategy simple-shuffle" in result.stdout
    assert "usage-based-routing-v2" in result.stdout
    local.write_text(local.read_text() + "router_settings: {routing_strategy: usage-based-routing-v2}\n")
    enforced = run_doit(home, "check")
    assert enforced.returncode == 0 and "warning" not in enforced.stdout, enforced.output


def test_every_problem_is_reported_in_one_run_with_its_line(home):
    """A typo, a bad value, a cross-check and a missing env var: one run names them all, file:line each."""
    (home / "config" / "local.yaml").write_text(
        "litelm:\n  port: 4000\n"
        "cliproxy:\n  port: abc\n"
        "models:\n  - {name: gpt-5.5}\n  - {name: gpt-5.5}\n"
        "  - {name: d, via: direct, model: openai/gpt-4o, api_key_env: FG_NOT_SET_ANYWHERE}\n"
        "profiles: null\n")
    for command in ("check", "up"):
        result = run_doit(home, command)
        assert result.returncode == 1 and "Traceback" not in result.output, result.output
        for said in ("config/local.yaml:1: litelm: unknown key (did you mean 'litellm'?)",
                     "config/local.yaml:4: cliproxy.port: expected a port number",
                     "config/local.yaml:7: models[1].name: duplicate model name 'gpt-5.5'",
                     "config/local.yaml:8: models[2].api_key_env: environment variable FG_NOT_SET_ANYWHERE is not set"):
            assert said in result.stderr, (command, said, result.stderr)
    assert not (home / ".router" / "state").exists()


def test_a_profile_switch_is_decided_under_the_stack_lock(home):
    """`profile` racing `down` or another `profile`: it waits for the lock, then decides from what
    holds; two at once end with the last one's profile, as each reports."""
    import subprocess
    import sys

    from tests.conftest import ROOT, base_env

    lock = home / ".router" / "flowgate.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import filelock, sys; l = filelock.FileLock(sys.argv[1]); "
                               "l.acquire(); print('held', flush=True); sys.stdin.readline()", str(lock)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    waiting = subprocess.Popen([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "profile", "cost"],
                               cwd=home, env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = waiting.stderr.readline()  # it says it waits, and has changed nothing yet
        assert line.startswith("waiting for another FlowGate command to finish")
        assert not (home / ".router" / "profile.json").exists()
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    out, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and "profile cost selected" in out
    second = run_doit(home, "profile", "reliable")
    assert second.returncode == 0 and "profile reliable selected" in second.stdout
    listing = run_doit(home, "profile").stdout
    assert "reliable" in [l.split()[1] for l in listing.splitlines() if l.startswith("*")]
