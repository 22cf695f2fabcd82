"""The at-least-once core every lane runs on: batches, metrics, health, lag, byte-bounded buffers, Faust's consumer transport."""
