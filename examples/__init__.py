"""Example apps; `python -m examples` (what `make run` runs) serves them."""
