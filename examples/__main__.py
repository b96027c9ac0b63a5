"""Serve the examples on 127.0.0.1:8000 (``make run``)."""

from __future__ import annotations

import argparse

import uvicorn

from examples.sdk_demo import app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the livepages examples.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
