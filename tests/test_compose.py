"""Moved to tests/unit/test_compose.py; kept only while tests/deploy/test_compose_run.py imports `_default` from here.

Remove this file once that import reads `from tests.container_files import interpolation_default`.
"""

from tests.container_files import interpolation_default as _default  # noqa: F401
