"""The poison corpus: bad and strange inputs, each with the outcome the worker must produce.

`expect` is "enriched" or the `ErrorCode` value of the one dead letter the record
must produce. Big payloads are generated (`_big_text`) instead of committed.
Every case has its own Kafka key so its dead letter can be traced back to it;
the few that test keys themselves say so.

`partition_blockers()` are records whose *output* cannot be published, each sent to
one partition followed by ordinary records: before issue 12 such a record failed its
batch for ever (exit 70, restart, same batch) and the records behind it never came out.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from schemas.events import ErrorCode

ENRICHED = "enriched"
MB = 1024 * 1024


@dataclass(frozen=True)
class PoisonCase:
    name: str
    value: bytes | None
    expect: str  # ENRICHED or an ErrorCode value
    why: str
    key: bytes | None = b""  # b"" = use the case name; None = no key (tested on purpose)
    headers: tuple[tuple[str, bytes], ...] = ()
    truncated: bool | None = None  # enriched only: expected sentiment.truncated

    @property
    def record_key(self) -> bytes | None:
        return self.name.encode() if self.key == b"" else self.key


def _event(event_id: str, text: object, **fields: object) -> bytes:
    return orjson.dumps({"id": event_id, "text": text, **fields})


def _with_nested(event_id: str, field: str, depth: int) -> bytes:
    # Built as bytes: orjson refuses to serialise more than 254 levels.
    nested = b'{"n":' * depth + b"1" + b"}" * depth
    return b'{"id": "%s", "text": "fine", "%s": %s}' % (event_id.encode(), field.encode(), nested)


def _big_text(chars: int) -> str:
    # Real words, so the model sees a plausible review, not one giant token.
    sentence = "The battery life is great but the screen scratches easily. "
    return (sentence * (chars // len(sentence) + 1))[:chars]


def cases() -> list[PoisonCase]:
    C = PoisonCase
    E = ErrorCode
    return [
        # --- not JSON --------------------------------------------------------------
        C("json-unterminated", b'{"id": "p-json-1", "text": "unterminated', E.invalid_json, "cut-off record"),
        C("json-trailing-comma", b'{"id": "p-json-2", "text": "ok",}', E.invalid_json, "trailing comma"),
        C("json-single-quotes", b"{'id': 'p-json-3', 'text': 'python repr'}", E.invalid_json, "Python dict repr"),
        C("json-nan", b'{"id": "p-json-4", "text": "x", "metadata": {"s": NaN}}', E.invalid_json, "NaN literal"),
        C("json-number-overflow", b'{"id": "p-json-5", "text": "x", "metadata": {"s": 1e400}}', E.invalid_json,
          "number beyond float range"),
        C("json-lone-surrogate-escape", b'{"id": "p-json-6", "text": "\\ud800 alone"}', E.invalid_json,
          "escaped lone UTF-16 surrogate"),
        C("json-two-objects", b'{"id": "a", "text": "x"}{"id": "b", "text": "y"}', E.invalid_json,
          "two events concatenated in one record"),
        C("plain-text", b"great product, would buy again", E.invalid_json, "text without JSON"),
        C("deep-nesting-100k", b"[" * 100_000 + b"]" * 100_000, E.invalid_json,
          "100,000 nested arrays: the parser's depth limit, not a stack overflow"),
        # --- not UTF-8 -------------------------------------------------------------
        C("latin-1", '{"id": "p-utf8-1", "text": "café crème brûlée"}'.encode("latin-1"), E.invalid_utf8,
          "Latin-1 encoded"),
        C("lone-continuation-byte", b'{"id": "p-utf8-2", "text": "bad \x80 byte"}', E.invalid_utf8,
          "stray continuation byte"),
        C("overlong-encoding", b'{"id": "p-utf8-3", "text": "\xc0\xaf"}', E.invalid_utf8, "overlong '/'"),
        C("utf-16", '{"id": "p-utf8-4", "text": "utf-16"}'.encode("utf-16"), E.invalid_utf8, "UTF-16 with BOM"),
        C("raw-surrogate-bytes", b'{"id": "p-utf8-5", "text": "\xed\xa0\x80"}', E.invalid_utf8,
          "CESU-8 surrogate bytes"),
        # --- size ------------------------------------------------------------------
        C("text-5mb", _event("p-size-5mb", _big_text(5 * MB)), E.payload_too_large,
          "5 MB record: rejected before parsing"),
        C("text-19000-chars", _event("p-size-19k", _big_text(19_000)), ENRICHED,
          "under the 20,000-char limit, far over the model window", truncated=True),
        C("text-20001-chars", _event("p-size-20001", _big_text(20_001)), E.text_too_long, "one char over the limit"),
        # --- empty -----------------------------------------------------------------
        C("zero-bytes", b"", E.empty_payload, "empty record value"),
        C("tombstone", None, E.empty_payload, "null record value"),
        C("empty-text", _event("p-empty-1", ""), E.empty_text, "empty string"),
        C("whitespace-text", _event("p-empty-2", " \n\t\r  "), E.empty_text, "whitespace only"),
        C("zero-width-text", _event("p-empty-3", "\u200b\u200b\ufeff\u2060"), E.empty_text, "zero-width chars only"),
        C("control-chars-text", _event("p-empty-4", "\u0000\u0007\u001b\u007f"), E.empty_text,
          "control characters only"),
        # --- nulls and wrong types ---------------------------------------------------
        C("null-text", _event("p-type-1", None), E.wrong_type, "text null"),
        C("null-id", orjson.dumps({"id": None, "text": "fine"}), E.wrong_type, "id null"),
        C("number-id", orjson.dumps({"id": 42, "text": "fine"}), E.wrong_type, "number where a string goes"),
        C("number-text", _event("p-type-2", 3.14), E.wrong_type, "number where a string goes"),
        C("bool-text", _event("p-type-3", True), E.wrong_type, "boolean text"),
        C("array-text", _event("p-type-4", ["a", "list"]), E.wrong_type, "array text"),
        C("object-text", _event("p-type-5", {"nested": "object"}), E.wrong_type, "object text"),
        C("string-metadata", _event("p-type-6", "fine", metadata="stars=5"), E.wrong_type, "metadata not an object"),
        C("deep-nesting-metadata", _with_nested("p-type-7", "metadata", 500), E.wrong_type,
          "500 levels of nesting in metadata"),
        C("number-source", _event("p-type-8", "fine", source=12345), E.wrong_type, "number source"),
        # --- not an object / missing fields -----------------------------------------
        C("json-array", b'[{"id": "p-obj-1", "text": "in a list"}]', E.not_an_object, "event wrapped in an array"),
        C("json-string", b'"just a string"', E.not_an_object, "JSON string"),
        C("json-null", b"null", E.not_an_object, "JSON null literal"),
        C("json-number", b"42", E.not_an_object, "JSON number"),
        C("empty-object", b"{}", E.missing_field, "no fields"),
        C("missing-id", orjson.dumps({"text": "no id here"}), E.missing_field, "no id"),
        C("missing-text", orjson.dumps({"id": "p-miss-2"}), E.missing_field, "no text"),
        # --- invalid values --------------------------------------------------------
        C("id-129-chars", _event("i" * 129, "fine"), E.invalid_field, "id over 128 chars"),
        C("blank-id", _event("   ", "fine"), E.invalid_field, "whitespace id"),
        C("timestamp-garbage", _event("p-val-1", "fine", timestamp="yesterday"), E.invalid_field, "unparseable time"),
        C("schema-version-2", _event("p-val-2", "fine", schema_version="2.0"), E.unsupported_schema_version,
          "future major version"),
        # --- strange but valid: enriched ---------------------------------------------
        C("emoji", _event("p-ok-emoji", "Absolutely love it 😍🔥👍🏽 best purchase ever 🎉"), ENRICHED, "emoji"),
        C("emoji-zwj-flags", _event("p-ok-zwj", "👨‍👩‍👧‍👦 family trip 🇯🇵🇧🇷 was wonderful"), ENRICHED,
          "ZWJ sequences and flags"),
        C("rtl-arabic", _event("p-ok-ar", "الخدمة ممتازة والتوصيل سريع جدا", lang="ar"), ENRICHED, "Arabic (RTL)"),
        C("rtl-hebrew-bidi", _event("p-ok-he", "\u202bהמוצר מצוין, ממליץ בחום\u202c", lang="he"), ENRICHED,
          "Hebrew with bidi embedding controls"),
        C("cjk-chinese", _event("p-ok-zh", "这个产品质量很好，我非常满意。", lang="zh"), ENRICHED, "Chinese"),
        C("cjk-japanese", _event("p-ok-ja", "この映画は本当に素晴らしかった！", lang="ja"), ENRICHED, "Japanese"),
        C("korean", _event("p-ok-ko", "정말 최고의 영화였어요", lang="ko"), ENRICHED, "Korean"),
        C("combining-marks", _event("p-ok-zalgo", "Z̴̢͈a̷̛l̶͎g̵̣o̸̗ text, but the plot was dull"), ENRICHED,
          "stacked combining marks"),
        C("embedded-control-chars", _event("p-ok-ctrl", "good\u0000 product\u0007 \u001b[31mred\u001b[0m"), ENRICHED,
          "control chars around visible text"),
        C("line-separators", _event("p-ok-lines", "line one\r\nline two\u2028line three\u2029end"), ENRICHED,
          "CRLF and Unicode line/paragraph separators"),
        C("markup-injection", _event("p-ok-html", "<script>alert(1)</script> '; DROP TABLE x; -- nice"), ENRICHED,
          "markup and SQL are just text"),
        C("utf8-bom-prefix", b"\xef\xbb\xbf" + _event("p-ok-bom", "a BOM before the JSON"), ENRICHED,
          "UTF-8 BOM is tolerated"),
        C("unknown-field-deep-nesting", _with_nested("p-ok-extra", "extra", 1000), ENRICHED,
          "1,000 levels in an unknown field: ignored"),
        C("duplicate-json-keys", b'{"id": "p-ok-dupkey", "text": "first", "text": "the last one wins"}', ENRICHED,
          "repeated key: the last value wins"),
        C("duplicate-id-a", _event("p-dup-id", "The first event with this id: loved it."), ENRICHED,
          "same id twice: both are enriched, downstream upserts by id"),
        C("duplicate-id-b", _event("p-dup-id", "The second event with this id: hated it."), ENRICHED,
          "same id twice: both are enriched, downstream upserts by id"),
        C("missing-key", _event("p-ok-nokey", "no Kafka key on this record"), ENRICHED,
          "keys are optional; the output is keyed by id", key=None),
        C("binary-key-and-header", _event("p-ok-binkey", "binary key and header"), ENRICHED,
          "non-UTF-8 key and header bytes", key=b"\xff\x00\xfe", headers=(("bin", b"\xff\xfe\x00"),)),
        C("epoch-ms-timestamp", _event("p-ok-epoch", "fine", timestamp=1_714_550_400_000), ENRICHED,
          "epoch milliseconds"),
        C("many-metadata-keys", _event("p-ok-meta", "fine", metadata={f"k{i}": i for i in range(1000)}), ENRICHED,
          "1,000 metadata keys"),
        C("id-128-chars", _event("i" * 128, "fine"), ENRICHED, "id at the limit"),
        # --- issue 12: the incident's record (a short text, a large metadata object) --------
        C("metadata-1040079-bytes", _issue_12_record(), E.payload_too_large,
          "1,040,079 bytes: over the input cap, which now leaves room for the output under the producer's limit"),
    ]


def _issue_12_record() -> bytes:
    """Like the incident's input: a short text and a metadata object, 1,040,079 bytes in all."""
    head = _event("p-issue12-input", "Great product, fast delivery.", metadata={"blob": ""})
    value = head.replace(b'"blob":""', b'"blob":"' + b"x" * (1_040_079 - len(head)) + b'"')
    assert len(value) == 1_040_079
    return value


#: Ordinary records sent behind each partition blocker, on the same partition.
FOLLOWERS = 20
#: Past the worker's producer limit (STREAMNLP_PRODUCER_MAX_REQUEST_BYTES, 1 MiB by default).
_HEADER_BYTES = 1_100_000


def _expanding_metadata(event_id: str) -> bytes:
    """Under the input cap, but its enriched output is not: every `1e15` comes back as
    `1000000000000000.0` (4 bytes in, 18 out), so 45,000 of them grow ~630 KB into ~1.26 MB."""
    entries = b",".join(b'"m%05d":1e15' % i for i in range(45_000))
    return b'{"id": "%s", "text": "Fine product, slow courier.", "metadata": {%s}}' % (event_id.encode(), entries)


def partition_blockers() -> list[PoisonCase]:
    """Each blocker, then FOLLOWERS ordinary records: all for one partition, in this order."""
    C = PoisonCase
    E = ErrorCode
    blockers = [
        C("output-too-large-metadata", _expanding_metadata("p-block-meta"), E.output_too_large,
          "input under the input cap, enriched output over the producer's limit (metadata floats expand)"),
        C("output-too-large-headers", _event("p-block-headers", "Small text, huge headers."), E.output_too_large,
          "headers copied to the output put it over the producer's limit; the dead letter drops them to fit",
          headers=(("blob-a", b"\xfe" * (_HEADER_BYTES // 2)), ("blob-b", b"a" * (_HEADER_BYTES // 2)))),
    ]
    out: list[PoisonCase] = []
    for blocker in blockers:
        out.append(blocker)
        out += [C(f"{blocker.name}-then-{i:02d}", _event(f"{blocker.name}-then-{i:02d}", f"Ordinary review {i}: works well."),
                  ENRICHED, "an ordinary record behind the blocker on its partition") for i in range(FOLLOWERS)]
    return out


def expected_text(case: PoisonCase) -> tuple[str, str]:
    """(id, text) of an enriched case's output: how an output is traced back to its case."""
    assert case.value is not None
    obj = orjson.loads(case.value.removeprefix(b"\xef\xbb\xbf"))
    return obj["id"], obj["text"]
