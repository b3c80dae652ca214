"""Evaluation: data loaders, metrics, the harness and its report."""
