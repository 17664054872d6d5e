"""tasks.stack.watch.recover: which command lines are this home's services (no process started)."""

from __future__ import annotations

from tasks.config.names import CLIPROXY, LITELLM
from tasks.base.paths import ROOT, Paths
from tasks.services.cliproxy import cliproxy_launch
from tasks.services.litellm import litellm_launch
from tasks.stack.watch import recover

STACK = {"litellm": {"host": "127.0.0.1", "port": 4000, "stop_timeout": 10, "env": {}, "replicas": 1},
         "cliproxy": {"host": "127.0.0.1", "port": 8317}, "models": []}


def test_the_litellm_launchers_command_line_is_ours(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path)
    launch = litellm_launch(paths, STACK, environ={})
    assert "--config" not in launch.argv  # the config path travels in the environment
    assert recover.is_ours(paths, LITELLM, launch.argv, str(launch.cwd))


def test_the_cliproxy_launchers_command_line_is_ours(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path)
    launch = cliproxy_launch(paths, STACK, tmp_path / "cli-proxy-api", "sha", environ={})
    assert recover.is_ours(paths, CLIPROXY, launch.argv, str(launch.cwd))


def test_another_home_service_or_directory_is_not_ours(tmp_path):
    paths = Paths(root=ROOT, home=tmp_path / "a")
    other = Paths(root=ROOT, home=tmp_path / "b")
    launch = litellm_launch(other, STACK, environ={})
    assert not recover.is_ours(paths, LITELLM, launch.argv, str(paths.litellm_config.parent))  # another home
    mine = litellm_launch(paths, STACK, environ={})
    assert not recover.is_ours(paths, CLIPROXY, mine.argv, str(paths.cliproxy_config.parent))  # another service
    assert not recover.is_ours(paths, LITELLM, mine.argv, str(tmp_path))  # another working directory
    # the service's own words after `--` never count as the launcher's options
    forged = ["python", "-m", "tasks.stack.launcher", "supervise", "--", "x", "--home", str(paths.home),
              "--service", LITELLM]
    assert not recover.is_ours(paths, LITELLM, forged, str(paths.litellm_config.parent))
