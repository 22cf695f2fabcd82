"""The at-least-once core every lane runs on: batches, metrics, health, lag."""
