"""One process per app on the in-process broker: a lock file taken at start-up.

The ``MemoryBroker`` carries events and the notices of closed sessions within one
process. Two processes of one app behind one address (``uvicorn --workers 2``,
gunicorn, two ``python -m app`` behind a proxy) would each show their own visitors
their own state. So an app on it takes an exclusive lock (``flock``) at start-up on
``.livepages/<module>.<n>.lock`` beside the module that made it, where ``<n>`` counts
the apps that module made before it in this process (the second ``App(...)`` of a
module is another app). A second process of the same app finds the lock taken and
refuses to start, naming the first one's pid.

The lock is released when the app shuts down, and by the operating system when the
process ends, however it ends (``kill -9`` included): a new process can start as soon
as the old one is gone. The lock file is removed on release.

Apps made by code without a source file (``python -c``, a notebook) take no lock;
neither do apps whose folder cannot be written (the start-up goes on, with a warning).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from pathlib import Path

from livepages.guards import StartupRefused
from livepages.paths import private_folder

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ProcessLock"]

log = logging.getLogger("livepages")

#: How many apps each source file has made in this process, to tell them apart.
_made: Counter[Path] = Counter()


class ProcessLock:
    """An exclusive lock on ``path`` while the app runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __repr__(self) -> str:
        state = "held" if self._fd is not None else "free"
        return f"<ProcessLock {self.path} {state}>"

    @classmethod
    def for_app(cls, source: Path) -> ProcessLock:
        """The lock of the next app made by the module ``source``."""
        number = _made[source]
        _made[source] += 1
        return cls(source.parent / ".livepages" / f"{source.stem}.{number}.lock")

    @property
    def held(self) -> bool:
        """Whether this process holds the lock now."""
        return self._fd is not None

    async def start(self) -> None:
        """Take the lock; :class:`StartupRefused` if another process holds it."""
        if self._fd is not None or fcntl is None:
            return
        try:
            private_folder(self.path.parent.parent)
            self._fd = self._take()
        except OSError as exc:
            log.warning(
                "cannot check that no other process runs this app on the in-process "
                "broker (lock file %s: %s)",
                self.path,
                exc.strerror,
            )

    def _take(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise StartupRefused(_refusal(self.path, holder)) from None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us may have removed the file between our open and our
            # lock: then we hold a lock on a file nobody else can find. Try again.
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                    return fd
            os.close(fd)

    async def stop(self) -> None:
        """Remove the lock file and release the lock. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Removed while still held, so whoever opens it next gets a new file (see _take).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(fd)


def _refusal(path: Path, holder: str) -> str:
    return (
        f"another process (pid {holder}) is running this app on the in-process broker "
        "(MemoryBroker), which carries events and closed sessions within one process "
        "only: visitors of each process would see their own state. Run one process, or "
        "connect every process to one NATS server (LIVEPAGES_NATS_URL, see "
        f"docs/scaling.md). The lock is {path}; LIVEPAGES_STARTUP_CHECKS=0 turns this "
        "check off."
    )
