"""The SSE fan-out benchmark: one change sent to N open streams, per server.

Run ``python -m benchmarks.fanout --quick``; the HTTP contract every target
serves and the meaning of each column are in ``benchmarks/fanout/README.md``.
"""
