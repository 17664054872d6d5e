"""Pools of OAuth accounts on the double or on the real v7.2.140, one setup for the tests that run a
pool scenario on both (test_real_pool.py: the binary alone; test_pool_steering.py: the whole stack)."""

from __future__ import annotations

from tests.integration.conftest import make_stack


def pool_stack(kind: str, tmp_path_factory, github, name: str, step: float, reset: float, closers: list):
    """(stack, proxy_url for write_account): `kind` "double" (its quota knobs) or "real" (the built binary
    published on a fake GitHub of its own, tests/fakes/provider.py's subscriptions reached through
    tests/fakes/mitm.py, whose CA SSL_CERT_FILE trusts: the accounts' `proxy_url`, which the executors and the
    api-call route both use); what must be closed afterwards goes on `closers`."""
    if kind == "double":
        return make_stack(tmp_path_factory, github, name, env={"CLIPROXY_DOUBLE_QUOTA_STEP": str(step),
                                                               "CLIPROXY_DOUBLE_QUOTA_RESET": str(reset)}), None
    from tests import real_cliproxy
    from tests.fakes.github import FakeGitHub
    from tests.fakes.mitm import Mitm
    from tests.fakes.provider import ProviderStandIn
    from tests.integration.test_real_cliproxy import publish_real

    work = tmp_path_factory.mktemp(f"{name}-work")
    built = real_cliproxy.binary("v7")
    gh = FakeGitHub().start()
    closers.append(gh.close)
    publish_real(gh, work / "dist", built, real_cliproxy.pinned_tag())
    provider = ProviderStandIn(quota_step=step, quota_reset=reset).start()
    closers.append(provider.close)
    mitm = Mitm(provider._server.server_address[1], work / "mitm").start()
    closers.append(mitm.close)
    return make_stack(tmp_path_factory, gh, name, env={"SSL_CERT_FILE": str(mitm.ca_file)}), mitm.url
