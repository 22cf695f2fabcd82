"""Where things are, for tests at any depth: a test's own `__file__` says nothing about the repo root."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
ARTIFACTS = REPO / "test-artifacts"
