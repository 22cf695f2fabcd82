"""docker-compose.yml as the tests read it: shared by tests/unit/test_compose.py and tests/deploy."""

from __future__ import annotations

import re


def interpolation_default(value: str) -> str:
    """Resolve compose interpolation `${VAR:-default}` to its default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)
