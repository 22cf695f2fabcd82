"""Start a worker process and wait until its /readyz says it consumes (models loaded, partitions assigned)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from pipeline.settings import Settings
from pipeline.tools.processes import WorkerProcess
from tests.scrape import get, poll_until


async def start_ready_worker(settings: Settings, log_path: Path, *, timeout_s: float = 120) -> WorkerProcess:
    """`settings.web_port` must be a free port (not 0): readiness is read from the worker's web server."""
    assert settings.web_port, "readiness needs the web server: pass web_port=free_port()"
    worker = WorkerProcess(settings, log_path).start()
    try:
        async with aiohttp.ClientSession() as session:
            await poll_until(lambda: get(session, f"http://127.0.0.1:{settings.web_port}/readyz"),
                             lambda r: r[0] == 200, timeout_s=timeout_s, what="/readyz 200", worker=worker)
    except BaseException:
        worker.kill()
        raise
    return worker
