"""Sentiment lane: decode -> language gate -> classify -> enriched events (texts.enriched)."""
