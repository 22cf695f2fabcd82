"""publish_all's classification: a failure that is the record's own is dead-lettered, any other is retried then fatal.

Small fake topics stand in for Faust's (this is the decision logic; tests/fault/test_poison.py
runs the same path in a real worker against the real broker). A `BrokerTopic` behaves like a
broker partition: records sent before their acks are awaited travel in one produce batch, and
a refusal fails the whole batch, as aiokafka's sender does.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import pytest
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaConnectionError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RequestTimedOutError,
    UnknownError,
)
from faust.exceptions import ProducerSendError

import pipeline.runtime.batches as agents
from pipeline.deadletter import Outgoing, RawRecord
from pipeline.runtime.batches import RECORD_REFUSALS, DeadLetterRoute, publish_all, record_refusal
from schemas.events import DeadLetter, ErrorCode
from schemas.summaries import SummaryRequest

LIMIT = 200_000


class BrokerTopic:
    """Records whose key is in `refuse` are refused with `error`, and so is every batch-mate sent with them."""

    def __init__(self, refuse: set[bytes] = frozenset(), error: Exception | None = None,  # type: ignore[assignment]
                 refuse_if: Any = None) -> None:
        self.refuse, self.error, self.refuse_if = set(refuse), error, refuse_if
        self.records: list[tuple[bytes | None, bytes, list]] = []
        self.sends = 0
        self._batch: list[tuple[asyncio.Future, tuple[bytes | None, bytes, list]]] = []

    async def send(self, *, key: Any, value: bytes, headers: list, force: bool) -> asyncio.Future:
        self.sends += 1
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._flush)
        self._batch.append((future, (key, value, headers)))
        return future

    def _bad(self, record: tuple[bytes | None, bytes, list]) -> bool:
        return record[0] in self.refuse or (self.refuse_if is not None and self.refuse_if(record))

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        failed = any(self._bad(record) for _, record in batch)
        for future, record in batch:
            if failed:
                future.set_exception(self.error or RuntimeError("no error given"))
            else:
                self.records.append(record)
                future.set_result(None)

    def keys(self) -> list[bytes | None]:
        return [key for key, _, _ in self.records]


class SizeCheckingTopic(BrokerTopic):
    """Like aiokafka's send(): refuses a record over `limit` synchronously, wrapped as Faust does."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    async def send(self, *, key: Any, value: bytes, headers: list, force: bool) -> asyncio.Future:
        if len(value) > self.limit:
            try:
                raise MessageSizeTooLargeError(f"The message is {len(value)} bytes when serialized")
            except MessageSizeTooLargeError as exc:
                raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        return await super().send(key=key, value=value, headers=headers, force=force)


def _source(i: int, headers: tuple = ()) -> RawRecord:
    value = orjson.dumps({"id": f"e{i}", "text": "fine"})
    return RawRecord("texts", 0, i, f"k{i}".encode(), value, headers)


def _output(i: int, text: str = "fine", headers: tuple = ()) -> Outgoing:
    request = SummaryRequest(id=f"e{i}", text=text, requested_at="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    return Outgoing(key=f"e{i}".encode(), value=request, headers=headers, source=_source(i, headers))


def _route(dlq: BrokerTopic, limit: int = LIMIT) -> DeadLetterRoute:
    return DeadLetterRoute(dlq, worker="w", payload_cap_bytes=1024, max_record_bytes=limit)  # type: ignore[arg-type]


def _letters(topic: BrokerTopic) -> list[dict]:
    return [orjson.loads(value) for _, value, _ in topic.records]


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise SystemExit(code)

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(agents.os, "_exit", fake_exit)
    monkeypatch.setattr(agents.asyncio, "sleep", no_sleep)
    return codes


def test_the_record_refusals_are_named() -> None:
    assert set(RECORD_REFUSALS) == {MessageSizeTooLargeError, RecordListTooLargeError, CorruptRecordException}
    wrapped = ProducerSendError("Error while sending")
    wrapped.__cause__ = MessageSizeTooLargeError("too big")
    assert isinstance(record_refusal(wrapped), MessageSizeTooLargeError)
    for transient in (UnknownError(), InvalidTimestampError(), KafkaConnectionError(), RequestTimedOutError()):
        assert record_refusal(transient) is None, transient


async def test_an_output_over_the_limit_is_dead_lettered_before_it_is_sent(exits: list[int]) -> None:
    out, dlq = BrokerTopic(), BrokerTopic()
    big = _output(1, text="x" * (LIMIT + 10))
    items = [_output(0), big, _output(2)]
    published = await publish_all([(out, item) for item in items], _route(dlq))
    assert out.keys() == [b"e0", b"e2"] and out.sends == 2, "the oversized record never reaches send()"
    (letter,) = _letters(dlq)
    assert letter["error_code"] == "output_too_large" and letter["event_id"] == "e1"
    assert str(big.size) in letter["reason"] and str(LIMIT) in letter["reason"]
    assert (letter["source_topic"], letter["source_offset"]) == ("texts", 1)
    assert base64.b64decode(letter["payload_b64"]) == big.source.value, "the letter carries the input, not the output"
    assert published.refused == [big] and published.kept(items) == [items[0], items[2]]
    assert exits == []


async def test_send_refusing_a_record_synchronously_dead_letters_it(exits: list[int]) -> None:
    # The limit we check is above the producer's: send() itself refuses (Faust wraps the error).
    out, dlq = SizeCheckingTopic(limit=5_000), BrokerTopic()
    items = [_output(0), _output(1, text="y" * 6_000), _output(2)]
    published = await publish_all([(out, item) for item in items], _route(dlq))
    assert out.keys() == [b"e0", b"e2"]
    (letter,) = _letters(dlq)
    assert letter["error_code"] == "output_too_large" and letter["event_id"] == "e1"
    assert "MessageSizeTooLargeError" in letter["reason"]
    assert [o.key for o in published.refused] == [b"e1"] and exits == []


@pytest.mark.parametrize(("error", "code"), [
    (MessageSizeTooLargeError(), ErrorCode.output_too_large),
    (RecordListTooLargeError(), ErrorCode.output_too_large),
    (CorruptRecordException(), ErrorCode.output_rejected),
])
async def test_a_broker_refusal_dead_letters_only_the_record_refused_alone(
    error: Exception, code: ErrorCode, exits: list[int]
) -> None:
    out, dlq = BrokerTopic(refuse={b"e1"}, error=error), BrokerTopic()
    items = [_output(i) for i in range(4)]
    published = await publish_all([(out, item) for item in items], _route(dlq))
    assert sorted(out.keys()) == [b"e0", b"e2", b"e3"], "batch-mates of the refused record are re-sent and published"
    assert len(out.records) == 3, "each exactly once"
    (letter,) = _letters(dlq)
    assert letter["error_code"] == code.value and letter["event_id"] == "e1"
    assert type(error).__name__ in letter["reason"] and "on its own" in letter["reason"]
    assert [o.key for o in published.refused] == [b"e1"]
    assert [o.value.error_code for o in published.dead_letters] == [code]  # type: ignore[attr-defined]
    assert exits == []


@pytest.mark.parametrize("error", [
    KafkaConnectionError(), RequestTimedOutError(), UnknownError(), InvalidTimestampError(),
])
async def test_a_transient_error_is_retried_then_exits_without_dead_letters(error: Exception, exits: list[int]) -> None:
    out, dlq = BrokerTopic(refuse={b"e0"}, error=error), BrokerTopic()
    with pytest.raises(SystemExit):
        await publish_all([(out, _output(0)), (out, _output(1))], _route(dlq))
    assert exits == [agents.EXIT_PUBLISH_FAILED]
    assert out.sends == 2 * agents.PUBLISH_ATTEMPTS, "the whole failed batch is retried, attempts times"
    assert dlq.records == []


async def test_a_transient_error_that_clears_publishes_everything_once(exits: list[int]) -> None:
    fails = {"left": 2}

    def flaky(record: tuple) -> bool:
        fails["left"] -= 1
        return fails["left"] >= 0

    out, dlq = BrokerTopic(error=RequestTimedOutError(), refuse_if=flaky), BrokerTopic()
    await publish_all([(out, _output(0))], _route(dlq))
    assert out.keys() == [b"e0"] and dlq.records == [] and exits == []


async def test_without_a_dead_letter_route_a_refusal_is_fatal(exits: list[int]) -> None:
    # Records with no input of their own (window aggregates) cannot be dead-lettered.
    out = BrokerTopic(refuse={b"e0"}, error=CorruptRecordException())
    with pytest.raises(SystemExit):
        await publish_all([(out, _output(0))])
    assert exits == [agents.EXIT_PUBLISH_FAILED]


async def test_a_refused_dead_letter_is_resent_without_headers_key_and_payload(exits: list[int]) -> None:
    # The DLQ topic refuses letters that still carry a payload (say its max.message.bytes is tiny).
    dlq = BrokerTopic(error=MessageSizeTooLargeError(), refuse_if=lambda r: orjson.loads(r[1])["payload_b64"] is not None)
    out = BrokerTopic(refuse={b"e1"}, error=CorruptRecordException())
    await publish_all([(out, _output(0, headers=(("trace", b"t"),))), (out, _output(1, headers=(("trace", b"t"),)))],
                      _route(dlq))
    (letter,) = _letters(dlq)
    assert letter["error_code"] == "output_rejected" and letter["event_id"] == "e1"
    assert letter["payload_b64"] is None and letter["payload_truncated"] and letter["payload_head_b64"]
    assert letter["headers_dropped"] and letter["key_dropped"] and letter["source_key_b64"] is None
    assert dlq.records[0][2] == [] and dlq.records[0][0] == b"e1", "no Kafka headers; keyed by the event id"
    assert exits == []


async def test_a_dead_letter_refused_with_nothing_left_to_drop_is_fatal(exits: list[int]) -> None:
    dlq = BrokerTopic(error=CorruptRecordException(), refuse_if=lambda r: True)
    out = BrokerTopic(refuse={b"e0"}, error=CorruptRecordException())
    with pytest.raises(SystemExit):
        await publish_all([(out, _output(0))], _route(dlq))
    assert exits == [agents.EXIT_PUBLISH_FAILED]
    assert out.records == [] and dlq.records == []


async def test_a_dead_letter_built_without_the_limit_is_fitted_before_sending(exits: list[int]) -> None:
    # e.g. a letter from decoding whose input headers alone are over the limit
    headers = (("blob", b"h" * (LIMIT + 1)),)
    source = _source(5, headers)
    letter = DeadLetter(error_code=ErrorCode.invalid_json, reason="bad", source_topic="texts", source_partition=0,
                        source_offset=5, headers={"blob": "h" * (LIMIT + 1)}, failed_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
                        worker="w", payload_size=0, payload_sha256="0" * 64)
    dlq = BrokerTopic()
    await publish_all([(dlq, Outgoing(key=b"k5", value=letter, headers=headers, source=source))], _route(dlq))
    (sent,) = _letters(dlq)
    assert sent["headers_dropped"] and sent["headers"] == {} and dlq.records[0][2] == []
    assert f"{LIMIT + 5} bytes" in sent["reason"]
    assert exits == []
