"""Windows lane: enriched events -> tumbling windows of sentiment per source (texts.sentiment.windows)."""
