"""Wires the dashboard into a worker's Faust app: hub + broadcaster + feed task + views."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import faust
from prometheus_client import CollectorRegistry

from pipeline.dashboard.broadcast import Broadcaster
from pipeline.dashboard.feed import DashboardFeed, FeedConfig
from pipeline.dashboard.hub import Hub, HubConfig
from pipeline.dashboard.views import register_views
from pipeline.logs import get_logger
from pipeline.settings import Settings

log = get_logger("streamnlp.dashboard")


@dataclass(frozen=True)
class Dashboard:
    hub: Hub
    broadcaster: Broadcaster
    feed: DashboardFeed


def install_dashboard(app: faust.App, settings: Settings, registry: CollectorRegistry | None) -> Dashboard:
    """Register the pages and the feed on `app` (call only when the web server is on)."""
    hub = Hub(HubConfig(bucket_s=settings.dashboard_bucket_s, show_text=settings.dashboard_show_text))
    broadcaster = Broadcaster()
    feed = DashboardFeed(settings, FeedConfig.from_settings(settings), hub, broadcaster.publish, registry)

    @app.task
    async def dashboard_feed() -> None:
        await feed.run()  # cancelled with the worker's other tasks on shutdown

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust types receivers as (sender, *args, **kwargs)
    async def close_dashboard_streams(_app: faust.App, **_: object) -> None:
        # Open event streams would otherwise hold the web server's graceful stop for its full timeout.
        broadcaster.close()

    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token is not None else None
    if token is None and not _loopback(settings.web_host):
        # Not an error (a private network may be the intent), but nobody should find out by accident.
        log.warning("dashboard_unauthenticated", web_host=settings.web_host, show_text=settings.dashboard_show_text,
                    fix="set STREAMNLP_DASHBOARD_TOKEN, or STREAMNLP_DASHBOARD_ENABLED=false")
    register_views(app, hub, broadcaster, token)
    return Dashboard(hub, broadcaster, feed)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
