"""A second, idle client that times one cheap page now and then, in a process of its own.

``python -m benchmarks.classifieds.probe --every 0.5 URL [URL...]`` loads each URL in
turn every ``--every`` seconds, one request at a time, and prints one line per request:
``<seconds> <status>`` (``<seconds> error <what>`` when there was no answer). It stops
when its standard input closes or it gets SIGTERM.

Its point is to tell the load client's delays from the server's: the load client's
own event loop, busy with hundreds of users, adds its lateness to every time it
measures. The probe has nothing else to do, so its times are the server's (queueing
included). If the probe's times are low while the users' are high, the load client is
the bottleneck; if both are high, the server is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

import httpx

from benchmarks.fanout.process import ROOT

__all__ = ["PROBE_PATH", "Probe", "main", "read_probe"]

#: The page the probe loads: a guest's sign-in page reads nothing from the store.
PROBE_PATH = "/signin"


def read_probe(lines: Sequence[str]) -> tuple[list[float], list[str]]:
    """The times of the probe's successful requests, and its errors, from its output."""
    times, errors = [], []
    for line in lines:
        seconds, _, rest = line.strip().partition(" ")
        if not rest:
            continue
        if rest == "200":
            try:
                times.append(float(seconds))
            except ValueError:
                errors.append(f"unreadable probe line {line.strip()!r}")
        else:
            errors.append(rest)
    return times, errors


class Probe:
    """The probe process (``benchmarks.classifieds.probe``), writing to a file."""

    def __init__(self, urls: Sequence[str], timeout: float, every: float = 0.5) -> None:
        # Closed by ``stop``: the file outlives this method.
        self.output = tempfile.TemporaryFile()  # noqa: SIM115
        argv = [sys.executable, "-m", "benchmarks.classifieds.probe", "--timeout", str(timeout)]
        argv += ["--every", str(every)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        self.popen = subprocess.Popen(
            [*argv, *urls], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=self.output
        )
        self.result: tuple[list[float], list[str]] | None = None

    async def stop(self) -> tuple[list[float], list[str]]:
        """Stop it (by closing its input, then by its PID); its times and errors."""
        if self.result is None:
            assert self.popen.stdin is not None
            self.popen.stdin.close()
            try:
                await asyncio.to_thread(self.popen.wait, 35)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
            self.output.seek(0)
            self.result = read_probe(self.output.read().decode(errors="replace").splitlines())
            self.output.close()
        return self.result


def main(argv: Sequence[str] | None = None) -> int:
    """Probe until standard input closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def wait_for_the_end() -> None:
        sys.stdin.read()  # the harness closes our standard input to stop us
        stop.set()

    threading.Thread(target=wait_for_the_end, daemon=True).start()
    with httpx.Client(timeout=args.timeout) as client:
        while not stop.wait(args.every):
            for url in args.urls:
                started = time.monotonic()
                try:
                    status = str(client.get(url).status_code)
                except httpx.HTTPError as exc:
                    status = f"error {type(exc).__name__}"
                print(f"{time.monotonic() - started:.6f} {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
