"""Where the dashboard is served (no web imports: the demo prints it without loading Faust)."""

from __future__ import annotations

from pipeline.settings import Settings

DASHBOARD_PATH = "/dashboard"


def dashboard_url(settings: Settings) -> str:
    """The page's URL for a browser on this machine (a 0.0.0.0 / :: bind is reached via loopback)."""
    host = settings.web_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}{DASHBOARD_PATH}"
