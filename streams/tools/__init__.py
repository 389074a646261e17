"""Operator and developer tools: benchmarks, offline evaluation, reconciliation, alert feeds."""
