"""The servers under test: one app process on the memory broker, or several on one NATS.

Each app process is ``livepages run <app>`` (the production server) in its own
process group, started with ``benchmarks.fanout.process.ServerProcess`` (its output
in a file, its memory and CPU time read from ``/proc``, stopped by PID). They all
serve one SQLite file (``CLASSIFIEDS_DB``) and, with more than one, share a
nats-server of their own (``LIVEPAGES_NATS_URL``, started as the tests start it) and
one secret key (``LIVEPAGES_SECRET_KEY``), so that a session, a tab and a change made
on one process are seen on the others.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.nats import find_nats_server, start_nats_server, stop_nats_server

from benchmarks.fanout.process import ROOT, ServerProcess, free_port, pinned_children

__all__ = ["DEFAULT_APP", "START_TIMEOUT", "Deployment", "deploy"]

#: The app under test, as ``livepages run`` names it.
DEFAULT_APP = "examples.classifieds.app:app"
#: How long an app process may take to import its app and listen.
START_TIMEOUT = 30.0


@dataclass
class Deployment:
    """The running app processes, their database and their NATS (``None`` with one)."""

    servers: list[ServerProcess]
    database: Path
    nats_url: str | None

    @property
    def bases(self) -> list[str]:
        """The base URL of each process."""
        return [f"http://127.0.0.1:{server.port}" for server in self.servers]

    def rss_kib(self) -> list[int]:
        """Each process's resident memory now, in KiB."""
        return [server.rss_kib() for server in self.servers]

    def cpu_seconds(self) -> list[float]:
        """Each process's CPU time so far."""
        return [server.cpu_seconds() for server in self.servers]

    def log_tail(self, lines: int = 30) -> list[str]:
        """The last ``lines`` lines each process printed (read before ``stop``)."""
        tail = []
        for number, server in enumerate(self.servers):
            with contextlib.suppress(OSError):
                text = server.log.read_text(errors="replace").splitlines()[-lines:]
                tail += [f"[process {number}] {line}" for line in text]
        return tail

    async def stop(self) -> None:
        """Stop the app processes (SIGTERM, by PID); safe to call twice."""
        for server in self.servers:
            await server.stop()


@contextlib.asynccontextmanager
async def deploy(
    processes: int, app: str, cpu: int | None, checkout: Path | None = None
) -> AsyncIterator[Deployment]:
    """``processes`` app processes of ``app`` pinned to ``cpu`` if not ``None`` (and
    their NATS with more than one), on a fresh database; all stopped when the block
    ends.

    With ``checkout``, the app is imported from that folder (another worktree, with
    livepages still from this one): the servers run there, and ``livepages run`` puts
    the folder first on their path.
    """
    with tempfile.TemporaryDirectory(prefix="classifieds-load-") as directory:
        folder = Path(directory)
        env = {
            "CLASSIFIEDS_DB": str(folder / "classifieds.sqlite3"),
            "LIVEPAGES_SECRET_KEY": secrets.token_urlsafe(32),
        }
        nats: subprocess.Popen[bytes] | None = None
        deployment = Deployment([], folder / "classifieds.sqlite3", None)
        try:
            if processes > 1:
                pinned = pinned_children(cpu) if cpu is not None else contextlib.nullcontext()
                with pinned:
                    nats, url = start_nats_server(find_nats_server(), folder)
                env["LIVEPAGES_NATS_URL"] = deployment.nats_url = url
            for _ in range(processes):
                port = free_port()
                argv = [sys.executable, "-m", "livepages", "run", app, "--port", str(port)]
                argv.append("--no-access-log")
                extra = (str(checkout),) if checkout is not None else ()
                server = ServerProcess(argv, port, cpu, extra, env, cwd=checkout or ROOT)
                deployment.servers.append(server)
                await server.wait_ready(START_TIMEOUT)
            yield deployment
        finally:
            await deployment.stop()
            if nats is not None:
                stop_nats_server(nats)
