"""`streamnlp eval`: every built model at every precision, measured (scores, data, runs, isolate, plan, report)."""
