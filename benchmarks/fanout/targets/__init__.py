"""The servers the fan-out benchmark measures, each run as its own process.

``raw`` is a runnable module; ``starlette_app`` and ``livepages_app`` are ASGI
app factories served by :mod:`benchmarks.fanout.serve`.
"""
