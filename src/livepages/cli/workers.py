"""``livepages run --workers N``: N processes serving one listening socket.

This process binds the socket and starts N worker processes
(``python -m livepages.cli.workers``), each importing the app and serving it on the
socket it inherits; the kernel hands each new connection to one of them. SIGTERM
(or SIGINT) is passed on to every worker, which ends its live streams at once and
exits; this process returns when they all have, killing any still running after
:data:`STOP_TIMEOUT`. A worker that exits by itself stops the others too, so that a
process manager sees the failure and restarts the whole.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from livepages.cli.project import load_app
from livepages.serving import TLS, serve

__all__ = ["STOP_TIMEOUT", "Workers", "main"]

#: Seconds the workers have to stop after SIGTERM before they are killed.
STOP_TIMEOUT = 10.0


class Workers:
    """``count`` processes serving ``app`` (``module:attribute``) on ``sock``."""

    def __init__(
        self,
        app: str,
        root: Path,
        sock: socket.socket,
        count: int,
        *,
        tls: TLS | None = None,
        access_log: bool = True,
    ) -> None:
        self.command = [
            *(sys.executable, "-m", "livepages.cli.workers", "--fd", str(sock.fileno())),
            *("--app", app, "--root", str(root)),
        ]
        if tls is not None:
            self.command += ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
        if not access_log:
            self.command.append("--no-access-log")
        self.sock = sock
        self.root = root
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def run(self) -> int:
        """Serve until stopped; the exit status (a worker's, if one failed)."""
        previous = {
            number: signal.signal(number, self._stop) for number in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for _ in range(self.count):
                # Our own interpreter and module, with the app named on our command line.
                worker = subprocess.Popen(  # noqa: S603
                    self.command, cwd=self.root, pass_fds=(self.sock.fileno(),)
                )
                self.processes.append(worker)
            return self._wait()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self._terminate()
            self._reap(time.monotonic() + STOP_TIMEOUT)

    def _wait(self) -> int:
        while True:
            for process in self.processes:
                code = process.poll()
                if code is not None:
                    if not self.stopping:
                        print(
                            f"livepages run: worker {process.pid} exited with {code}",
                            file=sys.stderr,
                        )
                        self._stop(signal.SIGTERM, None)
                    self._reap(time.monotonic() + STOP_TIMEOUT)
                    return 0 if self.stopping and code in (0, -signal.SIGTERM) else code or 1
            time.sleep(0.05)

    def _stop(self, number: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._terminate()

    def _terminate(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def _reap(self, deadline: float) -> None:
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main(argv: list[str] | None = None) -> None:
    """One worker: import the app and serve it on the inherited socket."""
    parser = argparse.ArgumentParser(prog="python -m livepages.cli.workers")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args(argv)
    app = load_app(args.app, Path(args.root))
    tls = TLS(args.certfile, args.keyfile) if args.certfile and args.keyfile else None
    serve(app, socket.socket(fileno=args.fd), tls=tls, access_log=not args.no_access_log)


if __name__ == "__main__":
    main()
