"""One process per app on the in-process broker: real processes of one app module.

Each test writes a small app module into its own folder and starts it as real
processes (``python serve.py PORT``, and ``uvicorn --workers 2``): the second process
of the same app must refuse to start, saying why; once the first has gone, even by
SIGKILL, a new one starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from livepages import App, Settings, StartupRefused
from livepages.process_lock import ProcessLock
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.anyio

#: How long a process may take to import its app and serve, or to give up.
START_TIMEOUT = 20.0

APP = textwrap.dedent("""
    import sys

    from livepages import App, Page, Settings
    from livepages.server import run

    app = App(settings=Settings.from_env(secret_key="lock-test"))


    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p>hi</p>"


    if __name__ == "__main__":
        run(app, port=int(sys.argv[1]), log_level="warning")
""")


class Process:
    """``python serve.py PORT`` (or another command) in the app's folder."""

    def __init__(self, folder: Path, command: list[str] | None = None, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        environ = {k: v for k, v in os.environ.items() if k != "LIVEPAGES_STARTUP_CHECKS"}
        environ.update(env)
        self.process = subprocess.Popen(
            command or [sys.executable, "serve.py", str(self.port)],
            cwd=folder,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def serves(self) -> bool:
        """Wait until it serves (True) or exits (False)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                return httpx.get(self.url, timeout=1).status_code == 200
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"{self.process.args!r} neither served nor exited")

    def exited(self) -> str:
        """Wait for it to exit on its own; what it printed on stderr."""
        self.process.wait(timeout=START_TIMEOUT)
        assert self.process.returncode != 0
        return self.stderr()

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "serve.py").write_text(APP)
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process a test starts, stopped by PID at its end."""
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def test_a_second_process_of_the_app_refuses_to_start(
    folder: Path, processes: list[Process]
) -> None:
    first = Process(folder)
    processes.append(first)
    assert first.serves()
    assert (folder / ".livepages" / "serve.0.lock").exists()
    second = Process(folder)
    processes.append(second)
    assert not second.serves()
    message = second.exited()
    assert f"another process (pid {first.process.pid}) is running this app" in message
    assert "in-process broker" in message
    assert "LIVEPAGES_NATS_URL" in message
    assert httpx.get(first.url, timeout=5).status_code == 200  # the first is unharmed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_once_the_first_is_gone_a_new_one_starts(
    folder: Path, processes: list[Process], sig: int
) -> None:
    first = Process(folder)
    processes.append(first)
    assert first.serves()
    first.stop(sig)  # SIGKILL: no shutdown ran, the OS released the lock
    again = Process(folder)
    processes.append(again)
    assert again.serves()


def test_uvicorn_workers_share_no_memory_broker(folder: Path, processes: list[Process]) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "serve:app", "--port", str(port), "--workers", "2"]
    server = Process(folder, command)
    server.url = f"http://127.0.0.1:{port}/"
    processes.append(server)
    assert server.serves()  # the first worker
    deadline = time.monotonic() + START_TIMEOUT
    refused = False
    # The second worker's start-up fails; uvicorn logs why (and starts it again).
    log = b""
    assert server.process.stderr is not None
    os.set_blocking(server.process.stderr.fileno(), False)
    while not refused and time.monotonic() < deadline:
        log += server.process.stderr.read() or b""
        refused = b"is running this app on the in-process broker" in log
        time.sleep(0.05)
    assert refused, log.decode(errors="replace")


def test_the_check_can_be_turned_off(folder: Path, processes: list[Process]) -> None:
    first = Process(folder)
    processes.append(first)
    assert first.serves()
    second = Process(folder, LIVEPAGES_STARTUP_CHECKS="0")
    processes.append(second)
    assert second.serves()


# -- in one process -------------------------------------------------------------------------


async def test_two_apps_of_one_module_in_one_process_both_start() -> None:
    one, two = App(settings=Settings(secret_key="k")), App(settings=Settings(secret_key="k"))
    lock_one, lock_two = one.lifecycle.guards[0], two.lifecycle.guards[0]
    assert isinstance(lock_one, ProcessLock)
    assert isinstance(lock_two, ProcessLock)
    assert lock_one.path != lock_two.path  # the second App(...) of a module is another app
    await one.startup()
    await two.startup()
    try:
        assert lock_one.held
        assert lock_two.held
    finally:
        await one.shutdown()
        await two.shutdown()
    assert not lock_one.held
    assert not lock_one.path.exists()  # removed on release


async def test_the_same_lock_taken_twice_in_one_process_is_refused(tmp_path: Path) -> None:
    # Another process would see exactly this: the file is locked.
    path = tmp_path / ".livepages" / "serve.0.lock"
    holder, other = ProcessLock(path), ProcessLock(path)
    await holder.start()
    try:
        with pytest.raises(StartupRefused, match=f"pid {os.getpid()}"):
            await other.start()
    finally:
        await holder.stop()
    await other.start()  # free again
    await other.stop()
    await other.stop()  # idempotent


def test_apps_off_the_memory_broker_or_with_checks_off_take_no_lock() -> None:
    assert App(settings=Settings(secret_key="k", startup_checks=False)).lifecycle.guards == ()


async def test_a_folder_that_cannot_hold_the_lock_only_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # .livepages is a file here: no lock file can be made under it (as in a read-only
    # install), and the app starts all the same.
    (tmp_path / ".livepages").write_text("not a folder")
    lock = ProcessLock(tmp_path / ".livepages" / "app.0.lock")
    await lock.start()
    assert not lock.held
    assert "cannot check that no other process runs this app" in caplog.text
    await lock.stop()
