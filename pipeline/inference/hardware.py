"""Which int8 kernels this CPU gives onnxruntime: recorded beside every measured accuracy and throughput.

Measured (docs/models.md, "int8 accuracy depends on the CPU"): the same int8 graph of the default
scores 84.1% held out on an AVX2 CPU and 84.5% on an AVX-512 VNNI one, and runs 2.4x faster there.
onnxruntime's u8 x s8 products can overflow their intermediate sums on x86 without VNNI, so an int8
figure means little without the instruction set it was measured on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: Most capable first: the first flag present names the int8 path.
_INT8_PATHS = (("amx_int8", "AMX-INT8"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
               ("avx512bw", "AVX-512BW, no VNNI"), ("avx2", "AVX2, no VNNI"), ("asimddp", "Arm dot product"))


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags of the first CPU in `cpuinfo` (x86 "flags", Arm "Features"); empty if unreadable."""
    try:
        with cpuinfo.open(encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def int8_kernels(flags: Iterable[str] | None = None) -> str:
    """A short name for the best int8 dot-product instructions among `flags` (default: this CPU's), or "unknown"."""
    present = set(cpu_flags() if flags is None else flags)
    return next((name for flag, name in _INT8_PATHS if flag in present), "unknown")
