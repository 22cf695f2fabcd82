"""Live dashboard: a read-only view of the output topics, served on the worker's web server.

hub.py    pure in-memory state (bounded): latest events, sentiment per source per time bucket, alerts, throughput
feed.py   groupless aiokafka consumer of the output topics + a sampler of this worker's metrics -> the hub
views.py  /dashboard (HTML), /dashboard/events (server-sent events), /dashboard/state (JSON), bearer token check
"""
