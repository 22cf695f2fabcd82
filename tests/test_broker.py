from __future__ import annotations

import socket

import pytest

from pipeline.broker import BrokerError, EmbeddedBroker, EmbeddedBrokerConfig


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
