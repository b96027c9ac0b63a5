"""A target server as a child process pinned to one CPU, with its memory and CPU time.

The server's output goes to a temporary file, never to a pipe that nobody reads
(a full pipe would stall the server mid-benchmark). Every started process is
remembered until it is stopped, and an ``atexit`` hook stops what is left, so
an error or Ctrl-C in the harness does not leave servers behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["ROOT", "ServerProcess", "Unavailable", "free_port", "pinned_children"]

ROOT = Path(__file__).resolve().parents[2]

# Exit status of a server that cannot run here (see benchmarks.fanout.serve).
_EXIT_UNAVAILABLE = 78

_running: set[ServerProcess] = set()


class Unavailable(Exception):
    """The target cannot run on this machine; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def pinned_children(cpu: int) -> Iterator[None]:
    """Processes started inside the block run on ``cpu`` only.

    A child inherits the CPU mask of the thread that forks it, so this thread
    moves to ``cpu`` for the block: every thread and process the child starts
    then stays on ``cpu``, without a preexec_fn (unsafe with threads around).
    """
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


class ServerProcess:
    """One server process, pinned to ``cpu`` (``None``: not pinned), listening on
    127.0.0.1:``port``.

    ``env`` is added to this process's environment for it. It runs in ``cwd``
    (this checkout by default).
    """

    def __init__(
        self,
        argv: list[str],
        port: int,
        cpu: int | None,
        pythonpath: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.port = port
        self.log = Path(tempfile.mkstemp(prefix="fanout-server-", suffix=".log")[1])
        environment = {**os.environ, **(env or {})}
        # `pythonpath` first: a target may bring its own copy of livepages.
        paths = (*pythonpath, str(ROOT), str(ROOT / "src"), environment.get("PYTHONPATH", ""))
        environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        pinned = pinned_children(cpu) if cpu is not None else contextlib.nullcontext()
        with pinned, self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so that workers it forks can be stopped with it.
                start_new_session=True,
            )
        _running.add(self)

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.popen.pid

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the port accepts connections.

        Raises :class:`Unavailable` when the server exits saying it cannot run here,
        and ``RuntimeError`` when it exits otherwise or does not listen in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.popen.poll()
            if code is not None:
                if code == _EXIT_UNAVAILABLE:
                    raise Unavailable(self.last_line())
                raise RuntimeError(f"server exited with status {code}: {self.last_line()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RuntimeError(f"server did not listen within {timeout:g} s: {self.last_line()}")

    def last_line(self) -> str:
        """The last line the server printed (its reason, when it stops early)."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no output)"
        return lines[-1] if lines else "(no output)"

    def rss_kib(self) -> int:
        """Resident memory of the server and its children, in KiB."""
        return sum(_status_kib(pid, "VmRSS") for pid in self._tree())

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's live threads and its children."""
        return sum(_cpu_seconds(pid) for pid in self._tree())

    def _tree(self) -> list[int]:
        pids = [self.pid]
        children = _children()
        for pid in pids:  # grows while iterating: a breadth-first walk
            pids.extend(children.get(pid, ()))
        return pids

    async def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 5 s. Safe to call twice."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.popen.wait, 5)
        self._kill()

    def _kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)
        # Anything left in the server's own process group (worker processes).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.log.unlink(missing_ok=True)
        _running.discard(self)


def _status_kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    # schedstat counts nanoseconds per thread; /proc/<pid>/stat only 10 ms ticks.
    total_ns = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total_ns += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return 0.0
    if total_ns:
        return total_ns / 1e9
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process we can see."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        try:
            server._kill()
        except Exception as exc:  # keep stopping the others
            print(f"could not stop server {server.pid}: {exc}", file=sys.stderr)
