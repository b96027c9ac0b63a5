"""The process ``livepages dev`` runs: it owns the socket and replaces the app's process.

::

    supervisor (this)                         app process (livepages.dev.child)
    ---------------------------------         ------------------------------------
    listening socket, for good       --fd-->  serves the app on it (or the overlay)
    watches the project (watchfiles)
    a Python file changed:           SIGTERM  ends its streams at once and exits;
        start the next process        ----->  the next one imports the code afresh
    other files changed (templates)  -ctl-->  re-renders open views, or reloads open
                                              pages when static files changed
    a watcher's glob matched:        runs its command first; a failure  -ctl--> overlay

The socket stays open across restarts, so a browser that reconnects meanwhile waits
in the kernel's queue for the next process instead of being refused. Each process
gets a new boot id (``LIVEPAGES_DEV_BOOT``): pages rendered by an earlier one reload
themselves when their stream reconnects. A process that exits by itself (rather
than by a restart) is replaced by one that shows why in the overlay, so the server
keeps answering until the code is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from watchfiles import DefaultFilter, awatch

from livepages.cli.project import Watcher
from livepages.serving import TLS

from .child import Changed, Message, Show
from .mode import BOOT_ENV
from .overlay import Problem
from .watchers import run_watchers

__all__ = ["STOP_TIMEOUT", "Supervisor", "WatchFilter"]

#: Seconds an app process may take to stop before it is killed. Its streams end at once.
STOP_TIMEOUT = 5.0
#: How an app process ends when a signal stopped it.
_STOPPED = (0, -signal.SIGINT, -signal.SIGTERM)


class WatchFilter(DefaultFilter):
    """watchfiles' default filter (``.git``, ``__pycache__``, ``.venv``, ``node_modules``,
    editors' swap files, ...), livepages' own ``.livepages`` folder (the sessions
    database changes with every request), the caches of common tools, log files and
    SQLite's journals: files that change because the app runs, not because of an edit."""

    ignore_dirs = (
        *DefaultFilter.ignore_dirs,
        ".livepages",
        ".ruff_cache",
        ".nox",
    )
    ignore_entity_patterns = (
        *DefaultFilter.ignore_entity_patterns,
        r"\.log$",
        r"-(journal|wal|shm)$",
    )


@dataclass
class _Process:
    """One app process and its end of the control socket."""

    process: asyncio.subprocess.Process
    control: asyncio.StreamWriter
    #: Whether it shows a problem instead of the app.
    problem: bool
    stopping: bool = False
    done: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Serves ``app`` (``module:attribute``) from ``root`` on ``sock`` until stopped."""

    def __init__(
        self,
        app: str,
        root: Path,
        sock: socket.socket,
        *,
        watchers: Sequence[Watcher] = (),
        tls: TLS | None = None,
    ) -> None:
        self.app = app
        self.root = root
        self.sock = sock
        self.watchers = tuple(watchers)
        self.tls = tls
        self._child: _Process | None = None
        self._stopping = asyncio.Event()

    def run(self) -> None:
        """Serve until SIGINT (Ctrl-C) or SIGTERM."""
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, self._stopping.set)
        await self._start()
        watching = loop.create_task(self._watch())
        try:
            await self._stopping.wait()
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await self._stop()

    # -- watching ----------------------------------------------------------------------

    async def _watch(self) -> None:
        async for changes in awatch(
            self.root,
            watch_filter=WatchFilter(),
            stop_event=self._stopping,
            rust_timeout=1000,  # how soon a stop is noticed
        ):
            await self.changed(sorted({Path(path) for _, path in changes}))

    async def changed(self, paths: Sequence[Path]) -> None:
        """Run the matching watchers, then restart (Python) or tell the app process."""
        problem = await run_watchers(self.watchers, paths, self.root)
        python = [path for path in paths if path.suffix == ".py"]
        if python:
            names = ", ".join(_relative(path, self.root) for path in python[:3])
            _say(f"{names} changed: restarting")
            await self._stop()
            await self._start()
        else:
            self._send(Changed(paths=[str(path) for path in paths]))
        if problem is not None:
            self._send(Show(problem=problem))

    # -- the app process ---------------------------------------------------------------

    async def _start(self, problem: Problem | None = None) -> None:
        ours, theirs = socket.socketpair()
        command = [
            *(sys.executable, "-m", "livepages.dev.child"),
            *("--fd", str(self.sock.fileno()), "--control", str(theirs.fileno())),
            *("--app", self.app, "--root", str(self.root)),
        ]
        if self.tls is not None:
            command += ["--certfile", self.tls.certfile, "--keyfile", self.tls.keyfile]
        if problem is not None:
            command += ["--problem", problem.encode().decode()]
        env = {**os.environ, BOOT_ENV: secrets.token_hex(8)}
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(self.sock.fileno(), theirs.fileno()),
            )
        finally:
            theirs.close()
        _, writer = await asyncio.open_unix_connection(sock=ours)
        child = _Process(process, writer, problem is not None)
        child.done = asyncio.get_running_loop().create_task(self._exited(child))
        self._child = child

    async def _exited(self, child: _Process) -> None:
        code = await child.process.wait()
        if code in _STOPPED:
            # Ctrl-C reaches the whole process group: the app process may stop before
            # this one has noticed the signal itself.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)
        if child.stopping or child is not self._child or self._stopping.is_set():
            return
        if child.problem:
            _say(f"the process showing the error exited with status {code}; waiting for a change")
            return
        _say(f"the app's process exited with status {code}")
        await self._start(
            Problem(
                title=f"The app's process exited with status {code}",
                text="What it printed is in the terminal of livepages dev.",
            )
        )

    async def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        child.stopping = True
        child.control.close()
        process = child.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                _say(f"the app's process did not stop within {STOP_TIMEOUT:g} s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if child.done is not None:
            await child.done

    def _send(self, message: Message) -> None:
        child = self._child
        if child is not None and not child.control.is_closing():
            child.control.write(msgspec.json.encode(message) + b"\n")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _say(text: str) -> None:
    print(f"livepages dev: {text}", file=sys.stderr, flush=True)
