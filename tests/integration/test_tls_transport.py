"""A real worker over TLS: embedded broker behind a TLS-terminating proxy, certificates made at test time.

    worker / CLI --TLS--> TlsProxy (127.0.0.1:P) --plaintext--> Tansu (advertises 127.0.0.1:P)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from pipeline.kafka.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port
from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from tests.harness import REPO, WorkerProcess, collect_until, unique_settings
from tests.tls_proxy import Pki, TlsProxy, make_pki

pytestmark = [pytest.mark.integration]


@dataclass(frozen=True)
class TlsBroker:
    bootstrap: str   # the proxy: the only way in
    pki: Pki
    proxy: TlsProxy


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    work = tmp_path_factory.mktemp("tls")
    pki = make_pki(work / "pki")
    broker_port = free_port()
    proxy = TlsProxy(pki, ("127.0.0.1", broker_port)).start()
    try:
        config = EmbeddedBrokerConfig(port=broker_port, advertised=proxy.address, log_path=work / "broker.log")
        with EmbeddedBroker(config):
            yield TlsBroker(bootstrap=proxy.address, pki=pki, proxy=proxy)
    finally:
        proxy.stop()


def _cli(args: list[str], env_extra: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMNLP_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "pipeline.tools.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.needs_model
async def test_worker_enriches_over_tls(tls_broker: TlsBroker, default_model_dir: Path, tmp_path: Path) -> None:
    settings = unique_settings(tls_broker.bootstrap, tmp_path, model_dir=default_model_dir, summarizer_mode="off",
                               security_protocol="SSL", ssl_cafile=tls_broker.pki.ca)
    await ensure_topics(settings)
    events = [{"id": f"tls-{i}", "text": f"A genuinely lovely film, part {i}."} for i in range(40)]
    records = [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in events]
    records.append(OutRecord(key=b"tls-bad", value=b"{not json"))
    await produce(settings, settings.input_topic, records)
    before = tls_broker.proxy.handshakes

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        got = await collect_until(settings, len(records), timeout_s=150, worker=worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    assert sorted(set(got.enriched_ids())) == sorted(e["id"] for e in events)
    assert [orjson.loads(r.value)["error_code"] for r in got.dead] == ["invalid_json"]
    assert tls_broker.proxy.handshakes > before + 1, "the worker's clients connected through the TLS proxy"


@pytest.mark.needs_model
def test_worker_with_the_wrong_ca_fails_fast(tls_broker: TlsBroker, default_model_dir: Path, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other-pki", name="some-other-ca")
    started = time.monotonic()
    result = _cli(["worker"], {
        "KAFKA_BOOTSTRAP_SERVERS": tls_broker.bootstrap, "STREAMNLP_SECURITY_PROTOCOL": "SSL",
        "STREAMNLP_SSL_CAFILE": str(other.ca), "STREAMNLP_MODEL_DIR": str(default_model_dir),
        "STREAMNLP_SUMMARIZER_MODE": "off", "STREAMNLP_WEB_PORT": "0", "STREAMNLP_DATA_DIR": str(tmp_path / "data"),
    })
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamnlp: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "certificate verify failed" in errors[0] and "STREAMNLP_SSL_CAFILE" in errors[0], errors[0]
    assert time.monotonic() - started < 60


def test_cli_clients_use_tls_and_refuse_an_unknown_ca(tls_broker: TlsBroker, tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": tls_broker.bootstrap, "STREAMNLP_SECURITY_PROTOCOL": "SSL",
           "STREAMNLP_SSL_CAFILE": str(tls_broker.pki.ca), "STREAMNLP_INPUT_TOPIC": f"tls-cli-{tmp_path.name}"}
    source = tmp_path / "events.jsonl"
    source.write_text('{"id": "a", "text": "fine"}\n')
    ok = _cli(["produce", str(source)], env)
    assert ok.returncode == 0 and "produced 1 records" in ok.stderr, ok.stderr

    other = make_pki(tmp_path / "other-pki", name="some-other-ca")
    refused = _cli(["produce", str(source)], {**env, "STREAMNLP_SSL_CAFILE": str(other.ca)})
    assert refused.returncode == 2
    assert "certificate verify failed" in refused.stderr and "STREAMNLP_SSL_CAFILE" in refused.stderr

    plaintext = _cli(["produce", str(source)], {**env, "STREAMNLP_SECURITY_PROTOCOL": "PLAINTEXT",
                                                  "STREAMNLP_SSL_CAFILE": ""})
    assert plaintext.returncode == 1, "a plaintext client must not get through a TLS listener"
    assert "STREAMNLP_SECURITY_PROTOCOL" in plaintext.stderr and "Traceback" not in plaintext.stderr, plaintext.stderr
