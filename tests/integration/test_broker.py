from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from pipeline.kafka.broker import BrokerError, EmbeddedBroker, EmbeddedBrokerConfig, free_port
from tests.paths import REPO


def test_embedded_broker_starts_on_a_free_port_and_stops() -> None:
    broker = EmbeddedBroker().start()
    try:
        assert broker.running
        with socket.create_connection(("127.0.0.1", broker.port), timeout=2):
            pass
    finally:
        broker.stop()
    assert not broker.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=1).close()


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match="already in use"):
            EmbeddedBroker(EmbeddedBrokerConfig(port=port)).start()


# --- `streamnlp broker` in the foreground: signals, listen address ------------------------------

ROOT = REPO


def _broker_command(*args: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
    # sigint_ignored: start it as a background shell job does (`cmd &` in a script), with SIGINT ignored.
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen([sys.executable, "-c", "from pipeline.tools.cli import main; main()", "broker", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_broker_command_stops_tansu_on_signal(sig: signal.Signals) -> None:
    # `kill` / `docker stop` send SIGTERM: the Tansu child (its own session) must go with the command,
    # or it keeps the port bound after the command has exited.
    # Started with SIGINT ignored, as from a background job: the command must still stop on it (a CI run
    # launched that way timed out waiting for the SIGINT case before the command set its own handler).
    proc = _broker_command("--port", "0", sigint_ignored=True)
    tansu: list[psutil.Process] = []
    try:
        ready = proc.stdout.readline()  # printed once the broker accepts connections
        match = re.search(r"KAFKA_BOOTSTRAP_SERVERS=[^:\s]+:(\d+)", ready)
        assert match, (ready, proc.stderr.read() if proc.poll() is not None else "")
        port = int(match.group(1))
        tansu = psutil.Process(proc.pid).children(recursive=True)
        assert tansu, "no broker child process"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(tansu, timeout=10)
        assert not alive, f"the broker process outlived `streamnlp broker` ({sig.name}): {alive}"
        assert not _listening(port), f"port {port} still accepts connections"
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        for child in tansu:  # whatever the outcome, leave nothing running
            if child.is_running():
                child.kill()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_all_interfaces_needs_an_advertised_host() -> None:
    with pytest.raises(BrokerError, match="--advertised-host"):
        EmbeddedBrokerConfig(host="0.0.0.0")
    proc = _broker_command("--host", "0.0.0.0", "--port", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--advertised-host" in err


@pytest.mark.integration
async def test_all_interfaces_with_advertised_host_serves_clients() -> None:
    # What a container needs: listen on every interface, tell clients a name they can resolve.
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    port = free_port()
    with EmbeddedBroker(EmbeddedBrokerConfig(host="0.0.0.0", port=port, advertised=f"localhost:{port}")) as broker:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
        await producer.start()
        try:
            await producer.send_and_wait("advertised", b"hello")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("advertised", bootstrap_servers=f"127.0.0.1:{port}", auto_offset_reset="earliest")
        await consumer.start()
        try:
            record = await consumer.getone()
            assert record.value == b"hello"
            # The metadata names the advertised host, which is how containers find the broker by service name.
            assert {b.host for b in consumer._client.cluster.brokers()} == {"localhost"}
        finally:
            await consumer.stop()
        assert broker.running
