"""rediss://: the shared store over TLS, with a real redis-server serving TLS only.

Debian's redis-server is built with TLS; the fixture gives it a CA and a server certificate of
its own (openssl, hack/localcluster/pki.py) and `--port 0 --tls-port P`, so nothing but TLS
reaches it. The runtime verifies the server's chain and name against the Agent's CA (the PEM
in the env var `caEnv` names, filled from `spec.stateStore.caSecretRef`), or, without one,
against the default trust store, which SSL_CERT_FILE replaces as for any OpenSSL program.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
from replicas import Replicas
from runtime_harness import AGENT, Running, agent_config, sample

import redisserver
from corral.api.runtimeconfig import RuntimeConfig
from fakes.openai_server import FakeOpenAI

PASSWORD = "tls-store-password"
CA_ENV = "CORRAL_STATE_STORE_CA"
PASSWORD_ENV = "CORRAL_STATE_STORE_PASSWORD"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def issue(tmp_path: Path) -> Callable[[list[str]], redisserver.Tls]:
    """A new CA (in a directory of its own) and a server certificate it signs for `ips`."""

    def new(ips: list[str]) -> redisserver.Tls:
        directory = Path(tempfile.mkdtemp(dir=tmp_path))
        return redisserver.Tls.issue(directory, ips)

    return new


@pytest.fixture
def tls_store(
    issue: Callable[[list[str]], redisserver.Tls],
) -> Iterator[redisserver.RedisServer]:
    """redis-server answering only TLS on 127.0.0.1, its certificate from a CA of its own."""
    with redisserver.RedisServer(password=PASSWORD, tls=issue(["127.0.0.1"])) as server:
        yield server


def tls_config(upstream: FakeOpenAI, url: str, *, ca: bool = True, **fields: Any) -> RuntimeConfig:
    store = {"url": url, "passwordEnv": PASSWORD_ENV, **({"caEnv": CA_ENV} if ca else {})}
    return agent_config(upstream.base_url, stateStore=store, **fields)


def env_with_ca(ca: Path) -> dict[str, str]:
    return {PASSWORD_ENV: PASSWORD, CA_ENV: ca.read_text()}


def test_the_store_answers_tls_only(tls_store: redisserver.RedisServer) -> None:
    """What the other tests rely on: a verified TLS client gets in, a plaintext one does not."""
    assert tls_store.url.startswith("rediss://")
    with tls_store.client() as client:
        assert client.ping()
    plain = redis.Redis(host="127.0.0.1", port=tls_store.port, password=PASSWORD, socket_timeout=5)
    with plain, pytest.raises(redis.ConnectionError):
        plain.ping()


def test_replicas_share_one_limit_through_rediss_verified_against_the_agents_ca(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    tls_store: redisserver.RedisServer,
) -> None:
    assert tls_store.tls is not None
    config = tls_config(upstream, tls_store.url, rateLimit={"requestsPerMinute": 3})
    apps = [serve(config, env=env_with_ca(tls_store.tls.ca), wall_clock=lambda: 1e9) for _ in "ab"]

    statuses = []
    for index in range(6):
        try:
            apps[index % 2].client().chat.completions.create(model=AGENT, messages=USER)
            statuses.append(200)
        except openai.RateLimitError:
            statuses.append(429)

    assert statuses == [200, 200, 200, 429, 429, 429]  # one limit of 3 for both replicas
    assert len(upstream.requests) == 3
    with tls_store.client() as store:
        assert any(store.scan_iter(match="corral:{default/*"))  # the counts are in the store
    for app in apps:
        assert sample(app.metrics(), "corral_state_store_up") == 1


def test_a_store_certificate_from_another_ca_is_refused(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    tls_store: redisserver.RedisServer,
    issue: Callable[[list[str]], redisserver.Tls],
) -> None:
    stranger = issue(["127.0.0.1"])  # a valid chain, but not to the CA the Agent trusts
    config = tls_config(upstream, tls_store.url, rateLimit={"requestsPerMinute": 100})
    app = serve(config, env=env_with_ca(stranger.ca))

    with pytest.raises(openai.InternalServerError) as failed:
        app.client().chat.completions.create(model=AGENT, messages=USER)

    assert failed.value.status_code == 503
    assert failed.value.code == "state_store_unavailable"
    assert upstream.requests == []
    assert sample(app.metrics(), "corral_state_store_up") == 0


def test_a_store_certificate_for_another_host_is_refused(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    issue: Callable[[list[str]], redisserver.Tls],
) -> None:
    """Signed by the trusted CA, but for 192.0.2.7 only: the name is checked, not just the chain."""
    other_host = issue(["192.0.2.7"])
    with redisserver.RedisServer(password=PASSWORD, tls=other_host) as store:
        config = tls_config(upstream, store.url, rateLimit={"requestsPerMinute": 100})
        app = serve(config, env=env_with_ca(other_host.ca))

        with pytest.raises(openai.InternalServerError) as failed:
            app.client().chat.completions.create(model=AGENT, messages=USER)

    assert failed.value.code == "state_store_unavailable"
    assert upstream.requests == []


def test_without_a_ca_the_runtime_trusts_the_default_store_which_ssl_cert_file_sets(
    upstream: FakeOpenAI, tls_store: redisserver.RedisServer
) -> None:
    """Real `corral runtime` processes: one trusting the store's CA through SSL_CERT_FILE is
    served; one with the default trust store alone (the store's CA is in no public bundle)
    answers 503 under FailClosed."""
    assert tls_store.tls is not None
    config = tls_config(upstream, tls_store.url, ca=False, rateLimit={"requestsPerMinute": 100})
    env = {PASSWORD_ENV: PASSWORD}
    with Replicas(config, 1, {**env, "SSL_CERT_FILE": str(tls_store.tls.ca)}) as trusting:
        answer = trusting[0].client().chat.completions.create(model=AGENT, messages=USER)
        assert answer.choices[0].message.content
    with Replicas(config, 1, env) as default:
        with pytest.raises(openai.InternalServerError) as failed:
            default[0].client().chat.completions.create(model=AGENT, messages=USER)
        assert failed.value.code == "state_store_unavailable"
    assert len(upstream.requests) == 1
