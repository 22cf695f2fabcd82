"""Secure-transport settings: validation, and that they reach Faust and every aiokafka client the CLI uses.

The embedded broker cannot authenticate with SASL (Tansu 0.6 cannot create users
while authentication is on), so SASL is proven here by configuration, TLS end to
end in tests/integration/test_tls_transport.py.
"""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.kafka import clients as kafka_io
from pipeline.kafka.security import client_security, faust_credentials, ssl_context
from pipeline.settings import ConfigError, Settings, load_settings
from pipeline.tools.processes import worker_env
from tests.tls_proxy import make_pki

# A readable PEM CA for parametrised cases (hence made at import, removed at exit).
_PKI_DIR = Path(tempfile.mkdtemp(prefix="streamnlp-pki-"))
atexit.register(shutil.rmtree, _PKI_DIR, True)
CA = make_pki(_PKI_DIR).ca


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("STREAMNLP_") or key == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)


class StubClassifier:
    info = SimpleNamespace(name="stub", version="0", precision="int8", path="-")

    def predict(self, texts: Any) -> list[Any]:
        raise AssertionError("not called: these tests never consume")


def sasl(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                                  sasl_username="svc-streamnlp", sasl_password="hunter2-not-logged", ssl_cafile=CA)
    values.update(overrides)
    return Settings(**values)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"STREAMNLP_SECURITY_PROTOCOL": "SASL_SSL"}, "needs STREAMNLP_SASL_USERNAME and STREAMNLP_SASL_PASSWORD"),
        ({"STREAMNLP_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "STREAMNLP_SASL_USERNAME": "u"}, "needs STREAMNLP_SASL_PASSWORD"),
        ({"STREAMNLP_SECURITY_PROTOCOL": "SSL", "STREAMNLP_SSL_CAFILE": "/nonexistent/ca.pem"},
         "STREAMNLP_SSL_CAFILE=/nonexistent/ca.pem is not a readable file"),
        ({"STREAMNLP_SSL_CAFILE": str(CA)}, "does not use TLS; set STREAMNLP_SECURITY_PROTOCOL=SSL"),
        ({"STREAMNLP_SASL_PASSWORD": "x"}, "set STREAMNLP_SECURITY_PROTOCOL=SASL_SSL"),
        ({"STREAMNLP_SECURITY_PROTOCOL": "SSL", "STREAMNLP_SSL_KEYFILE": str(CA)}, "without STREAMNLP_SSL_CERTFILE"),
        ({"STREAMNLP_SECURITY_PROTOCOL": "TLS"}, "STREAMNLP_SECURITY_PROTOCOL"),
        ({"STREAMNLP_SECURITY_PROTOCOL": "SASL_SSL", "STREAMNLP_SASL_MECHANISM": "GSSAPI"}, "STREAMNLP_SASL_MECHANISM"),
    ],
)
def test_inconsistent_settings_fail_with_a_one_line_fix(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                         fragment: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_empty_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMNLP_SSL_CAFILE", "")
    monkeypatch.setenv("STREAMNLP_SASL_USERNAME", "")
    settings = load_settings()
    assert settings.ssl_cafile is None and settings.sasl_username is None


def test_a_ca_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError, match="STREAMNLP_SSL_CAFILE=.*is not a PEM CA bundle"):
        ssl_context(Settings(security_protocol="SSL", ssl_cafile=bogus))


# --------------------------------------------------------------------------- one source of truth
def test_plaintext_adds_nothing() -> None:
    settings = Settings()
    assert client_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_ssl_context_verifies_with_the_given_ca() -> None:
    context = ssl_context(Settings(security_protocol="SSL", ssl_cafile=CA))
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs(), "the CA bundle was loaded"
    relaxed = ssl_context(Settings(security_protocol="SSL", ssl_check_hostname=False))
    assert relaxed is not None and not relaxed.check_hostname and relaxed.verify_mode == ssl.CERT_REQUIRED


def test_sasl_settings_reach_aiokafka_kwargs() -> None:
    kwargs = client_security(sasl())
    assert kwargs["security_protocol"] == "SASL_SSL" and isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "svc-streamnlp", "hunter2-not-logged")
    plain = client_security(sasl(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", ssl_cafile=None))
    assert plain["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in plain


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_settings_reach_the_faust_worker_clients(protocol: str, mechanism: str) -> None:
    """What Faust's own producer and consumer hand to aiokafka, from the app the worker runs."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from pipeline.service.app import create_app

    settings = sasl(security_protocol=protocol, sasl_mechanism=mechanism,
                    ssl_cafile=CA if protocol == "SASL_SSL" else None, summarizer_mode="off", web_port=0)
    app, _ = create_app(settings, classifier=StubClassifier())
    consumer_auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    producer_auth = app.producer._settings_auth()
    for auth in (consumer_auth, producer_auth):
        assert auth["security_protocol"] == protocol
        assert auth["sasl_mechanism"] == mechanism
        assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("svc-streamnlp", "hunter2-not-logged")
        assert (auth["ssl_context"] is not None) == (protocol == "SASL_SSL")
    assert "hunter2" not in repr(app.conf.broker_credentials)


def test_ssl_settings_reach_the_faust_worker_clients() -> None:
    from pipeline.service.app import create_app

    settings = Settings(security_protocol="SSL", ssl_cafile=CA, summarizer_mode="off", web_port=0)
    app, _ = create_app(settings, classifier=StubClassifier())
    auth = app.producer._settings_auth()
    assert auth["security_protocol"] == "SSL" and auth["ssl_context"].get_ca_certs()


class _Stop(Exception):
    pass


def _recorder(calls: list[tuple[str, dict[str, Any]]], name: str) -> type:
    class Recorder:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append((name, kwargs))

        async def start(self) -> None:
            raise _Stop

        async def stop(self) -> None:
            pass

        async def close(self) -> None:
            pass

    return Recorder


async def test_every_cli_client_gets_the_security_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(kafka_io, "AIOKafkaProducer", _recorder(calls, "producer"))
    monkeypatch.setattr(kafka_io, "AIOKafkaConsumer", _recorder(calls, "consumer"))
    monkeypatch.setattr(kafka_io, "AIOKafkaAdminClient", _recorder(calls, "admin"))
    settings = sasl()
    attempts = [
        kafka_io.produce(settings, "t", [kafka_io.OutRecord(b"k", b"v")]),
        kafka_io.ensure_topics(settings),
        kafka_io.TopicFollower(settings, ["t"]).start(),
        anext(kafka_io.read_to_end(settings, "t")),
    ]
    for attempt in attempts:
        with pytest.raises(_Stop):
            await attempt
    assert sorted(name for name, _ in calls) == ["admin", "consumer", "consumer", "producer"]
    for name, kwargs in calls:
        assert kwargs["security_protocol"] == "SASL_SSL", name
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512" and kwargs["sasl_plain_password"] == "hunter2-not-logged"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


# --------------------------------------------------------------------------- secrets stay secret
def test_config_masks_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.tools.cli import main

    for key, value in {"STREAMNLP_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "STREAMNLP_SASL_USERNAME": "svc",
                       "STREAMNLP_SASL_PASSWORD": "hunter2-not-logged"}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("STREAMNLP_SASL_PASSWORD"))
    assert "********" in line
    assert "hunter2" not in repr(load_settings())


def test_worker_processes_inherit_the_real_secret_and_no_none() -> None:
    env = worker_env(sasl())
    assert env["STREAMNLP_SASL_PASSWORD"] == "hunter2-not-logged"
    assert env["STREAMNLP_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert "STREAMNLP_SSL_CERTFILE" not in env, "unset optional settings stay unset in the child"
