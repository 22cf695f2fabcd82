"""Record size limits: the input cap, the producer's record limit and what a dead letter may take.

Pure arithmetic at the bottom of the package: the settings validate them together at startup,
the decoder, the dead-letter builder and the buffers apply them (docs/reliability.md).

    input value     <= max_payload_bytes                       else payload_too_large (decoding)
    enriched output ~= input value + what enrichment adds      checked per record before sending
    dead letter     <= base64(payload cap) + LETTER_OVERHEAD_BYTES
    every record    <= max_record_bytes (the producer's max_request_size)
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_PAYLOAD_CAP_BYTES",
    "LETTER_OVERHEAD_BYTES",
    "OUTPUT_HEADROOM_BYTES",
    "letter_budget",
]

#: Hard limit on the raw record value, checked before parsing (STREAMNLP_MAX_PAYLOAD_BYTES; 20k
#: chars of worst-case escaped JSON is ~120 KB). Below the producer's 1 MiB record limit by
#: more than OUTPUT_HEADROOM_BYTES, so an accepted input's enriched output fits (settings check it).
DEFAULT_MAX_PAYLOAD_BYTES = 1_000_000
#: The producer's record limit (aiokafka's max_request_size) unless configured: Kafka's default
#: broker/topic limit (message.max.bytes, 1,048,588) rounded down to 1 MiB.
DEFAULT_MAX_RECORD_BYTES = 1_048_576
#: Dead letters embed the raw value byte-exact up to this size (base64: 4/3 of it).
DEFAULT_PAYLOAD_CAP_BYTES = 262_144
#: Room between the input cap and the record limit for what enrichment adds to an input
#: (sentiment, language, processing: ~600 bytes measured) plus ordinary headers. Inputs whose
#: output still grows past the limit (huge headers, floats like 1e15 printed in full) are
#: dead-lettered one by one as output_too_large.
OUTPUT_HEADROOM_BYTES = 16_384
#: A dead letter without payload, headers and key: reason (clipped to MAX_REASON_CHARS, plus
#: what was dropped), the 1 KiB head in base64, ids, topic, worker, JSON field names, all
#: worst-case JSON-escaped, plus the record overhead. Measured well under half of this.
LETTER_OVERHEAD_BYTES = 16_384


def _base64_size(n: int) -> int:
    return 4 * ((n + 2) // 3)


def letter_budget(payload_cap_bytes: int) -> int:
    """The largest dead letter with a kept payload but without headers or key."""
    return _base64_size(payload_cap_bytes) + LETTER_OVERHEAD_BYTES
