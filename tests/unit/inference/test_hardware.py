from pathlib import Path

from pipeline.inference.hardware import cpu_flags, int8_kernels

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse4_1 avx2 avx512f avx512bw avx512_vnni
processor\t: 1
flags\t\t: fpu sse4_1
"""


def test_reads_the_first_cpus_x86_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(X86)
    assert cpu_flags(info) == {"fpu", "sse4_1", "avx2", "avx512f", "avx512bw", "avx512_vnni"}


def test_reads_arm_features(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert int8_kernels(cpu_flags(info)) == "Arm dot product"


def test_unreadable_cpuinfo_is_no_flags(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert int8_kernels(frozenset()) == "unknown"


def test_vnni_is_named_over_avx2_and_its_absence_is_said() -> None:
    assert int8_kernels({"avx2", "avx512f", "avx512_vnni"}) == "AVX-512 VNNI"
    assert int8_kernels({"avx2", "avx_vnni"}) == "AVX-VNNI"
    assert int8_kernels({"avx2", "avx512bw"}) == "AVX-512BW, no VNNI"
    assert int8_kernels({"sse4_1", "avx2"}) == "AVX2, no VNNI"


def test_default_reads_this_cpu() -> None:
    assert int8_kernels() == int8_kernels(cpu_flags())
