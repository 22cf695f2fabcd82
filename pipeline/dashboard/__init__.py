"""Live dashboard: a read-only view of the output topics, served on the worker's web server.

hub.py    pure in-memory state (bounded): latest events, sentiment per source per time bucket, alerts, throughput
feed.py   groupless aiokafka consumer of the output topics + a sampler of this worker's metrics -> the hub
broadcast.py  fan-out of updates to the connected pages (bounded queue per page)
views.py  /dashboard (HTML), /dashboard/events (server-sent events), /dashboard/state (JSON), bearer token check
page.html the page: inline JS, hand-drawn SVG charts, no CDN
service.py  wiring into the worker's Faust app; url.py  the page's URL (for `streamnlp demo`)
"""
