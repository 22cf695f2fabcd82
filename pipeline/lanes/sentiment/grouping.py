"""Which records of a micro-batch are scored and published first: the short ones.

A long text costs up to the model's whole window (256 tokens) to score, and a batch's results
are published only after its inference; scored together with short texts, a few long ones
delayed every short result of their batch (sentiment p99 81 -> 197 ms with 8 long texts in
flight, docs/performance.md "Sentiment first"). The agent scores and publishes the short group,
then the long one.

"Long" is decided from the raw value's size, before decoding: a JSON text event of N characters
is at least N bytes, so a threshold of `summary_min_chars` bytes puts every summary-bound text
(plus near-misses with a large envelope) in the long group and costs one pass over the sizes.
"""

from __future__ import annotations

from collections.abc import Sequence


def short_then_long(records: Sequence[tuple[bytes | None, int]], long_bytes: int) -> tuple[list[int], list[int]]:
    """Indices of `records` ((key, value size) pairs) as (short, long) groups, each in input order.

    A record is long when its size is at least `long_bytes`. Every record sharing a key with a
    long one joins the long group too, so one key's outputs keep their input order; records
    without a key (None) go by their size alone. No long record: (all indices, []).
    """
    is_long = [size >= long_bytes for _, size in records]
    if not any(is_long):
        return list(range(len(records))), []
    long_keys = {key for (key, _), long in zip(records, is_long, strict=True) if long and key is not None}
    short: list[int] = []
    long_group: list[int] = []
    for i, ((key, _), long) in enumerate(zip(records, is_long, strict=True)):
        (long_group if long or (key is not None and key in long_keys) else short).append(i)
    return short, long_group
