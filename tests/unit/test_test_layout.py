"""The test tree's own rules: tests sit in a tier folder, and no test module imports another."""

from __future__ import annotations

import re

from tests.paths import REPO, TESTS

# Statement text anywhere in a file, so scripts that tests run in a subprocess count too.
FROM_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(\([^)]*\)|[\w ,]+)", re.MULTILINE)
PLAIN_IMPORT = re.compile(r"^\s*import\s+([\w.]+)", re.MULTILINE)

TIERS = {"unit", "integration", "fault", "deploy"}
NOT_YET: set[tuple[str, str]] = set()  # (file, test module it still imports): none left


def imported_test_modules(text: str) -> set[str]:
    modules = set(PLAIN_IMPORT.findall(text))
    for package, names in FROM_IMPORT.findall(text):
        modules.add(package)
        for name in re.sub(r"#[^\n]*", "", names).strip("()").split(","):
            name = name.split(" as ")[0].strip()
            if name:
                modules.add(f"{package}.{name}")
    # a module (or a name imported from a package) called test_*: pytest collects it, so it is a test module
    return {m for m in modules if m.startswith("tests.") and m.rsplit(".", 1)[-1].startswith("test_")}


def test_no_test_module_imports_another() -> None:
    found = {
        (path.relative_to(REPO).as_posix(), module)
        for path in TESTS.rglob("*.py")
        for module in imported_test_modules(path.read_text())
    }
    assert found <= NOT_YET, (
        "shared doubles and helpers belong in tests/doubles.py (or harness.py, container_files.py), not in a test "
        f"module: {sorted(found - NOT_YET)}"
    )


def test_the_scan_sees_imports_of_test_modules() -> None:
    script = ("from tests.unit.lanes.sentiment.test_agent import x\nfrom tests.unit.tools import test_cli\n"
              "from tests.unit import (\n    test_errors,  # why\n    test_settings as s,\n)\nimport tests.unit.test_readme\n")
    assert imported_test_modules(script) == {"tests.unit.lanes.sentiment.test_agent", "tests.unit.tools.test_cli",
                                             "tests.unit.test_errors", "tests.unit.test_settings", "tests.unit.test_readme"}
    assert imported_test_modules("from tests.doubles import MemoryTopic\nimport tests.harness\n") == set()


def test_every_test_module_is_in_a_tier() -> None:
    loose = [p.relative_to(REPO).as_posix() for p in TESTS.glob("test_*.py")]
    assert not loose, f"put these under tests/{{{','.join(sorted(TIERS))}}}/: {loose}"
    assert TIERS <= {p.name for p in TESTS.iterdir() if p.is_dir()}
