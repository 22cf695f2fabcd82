"""Liveness, readiness and the metrics endpoint, served by Faust's own web server.

- `/healthz`: 200 while the process (its event loop) answers at all.
- `/readyz`: 200 only when every required model is loaded and partitions of this worker's
  source topics are assigned to it; else 503 with a JSON reason. A worker with no partitions
  (more workers than partitions, mid-rebalance, or stopping) does no work, so it is not ready.
- `/metrics`: the worker's Prometheus registry in text format.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.web import Request, Response, View

from pipeline.runtime.metrics import WorkerMetrics


@dataclass(frozen=True)
class ReadyStatus:
    ready: bool
    reason: str
    models: dict[str, bool]
    partitions: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "reason": self.reason, "models": self.models, "partitions": self.partitions}


@dataclass
class Readiness:
    """What /readyz reports. Updated on the event loop: by model loading and Faust's rebalance signals."""

    source_topics: frozenset[str]
    required_models: frozenset[str]
    _models: set[str] = field(default_factory=set)
    _assigned: set[tuple[str, int]] = field(default_factory=set)
    _stopping: bool = False

    @classmethod
    def create(cls, source_topics: Iterable[str], required_models: Iterable[str]) -> Readiness:
        return cls(frozenset(source_topics), frozenset(required_models))

    def model_loaded(self, role: str) -> None:
        self._models.add(role)

    def partitions_assigned(self, assigned: Iterable[Any]) -> None:
        """The full new assignment: Faust's on_partitions_assigned replaces the previous one."""
        self._assigned = {(tp.topic, tp.partition) for tp in assigned if tp.topic in self.source_topics}

    def partitions_revoked(self, revoked: Iterable[Any]) -> None:
        self._assigned -= {(tp.topic, tp.partition) for tp in revoked}

    def stopping(self) -> None:
        self._stopping = True

    def status(self) -> ReadyStatus:
        models = {role: role in self._models for role in sorted(self.required_models)}
        partitions = sorted(f"{topic}:{partition}" for topic, partition in self._assigned)
        if self._stopping:
            reason = "stopping"
        elif not all(models.values()):
            reason = "models not loaded: " + ", ".join(role for role, ok in models.items() if not ok)
        elif not partitions:
            reason = f"no partitions of {', '.join(sorted(self.source_topics))} assigned to this worker"
        else:
            reason = "ok"
        return ReadyStatus(ready=reason == "ok", reason=reason, models=models, partitions=partitions)


def register_endpoints(app: faust.App, metrics: WorkerMetrics, readiness: Readiness) -> None:
    """Add /healthz, /readyz and /metrics to the app's web server (only when web is enabled)."""

    @app.page("/healthz")
    async def healthz(self: View, request: Request) -> Response:
        return self.json({"alive": True})

    @app.page("/readyz")
    async def readyz(self: View, request: Request) -> Response:
        status = readiness.status()
        return self.json(status.as_dict(), status=200 if status.ready else 503)

    @app.page("/metrics")
    async def metrics_page(self: View, request: Request) -> Response:
        body, content_type = metrics.render()
        # Via headers, not content_type=: aiohttp rejects a content_type argument that carries a charset.
        return self.bytes(body, headers={"Content-Type": content_type})
