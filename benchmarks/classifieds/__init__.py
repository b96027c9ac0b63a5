"""The classifieds load test's parts; ``python -m benchmarks.classifieds_load`` runs it."""
