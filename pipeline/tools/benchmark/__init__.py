"""`streamnlp bench`: the sentiment lanes (bare, naive, pipeline) on the same texts, in one run.

Modules: texts (the seeded texts), meter (CPU/RSS/latency helpers), hf_weights (the naive
lane's PyTorch weights, read back from the built ONNX model), children (the bare and naive
lanes as child processes), lanes (each lane against the embedded broker), plan (the run
order with progress and ETA), report (table and JSON), plot (PNG).
"""
