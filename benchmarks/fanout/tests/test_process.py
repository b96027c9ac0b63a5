from __future__ import annotations

import os
import sys

import pytest

from benchmarks.fanout.process import ServerProcess, Unavailable, free_port

pytestmark = pytest.mark.anyio

CPU = min(os.sched_getaffinity(0))


async def test_a_server_is_pinned_measured_and_stopped() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.fanout.targets.raw", "--port", str(port)]
    server = ServerProcess(argv, port, CPU)
    try:
        await server.wait_ready(30)
        assert os.sched_getaffinity(server.pid) == {CPU}
        assert server.rss_kib() > 1000  # an interpreter with uvloop loaded
        assert server.cpu_seconds() > 0
    finally:
        await server.stop()
    assert server.popen.returncode is not None
    assert not server.log.exists()
    await server.stop()  # twice is harmless


async def test_a_factory_that_cannot_run_makes_the_target_unavailable() -> None:
    port = free_port()
    app = "benchmarks.fanout.tests.targets.broken:create_app"
    argv = [sys.executable, "-m", "benchmarks.fanout.serve", "--app", app]
    server = ServerProcess([*argv, "--port", str(port)], port, CPU)
    try:
        with pytest.raises(Unavailable, match=r"NotImplementedError: .*placeholder"):
            await server.wait_ready(30)
    finally:
        await server.stop()


async def test_a_server_that_crashes_is_an_error_with_its_last_line() -> None:
    port = free_port()
    argv = [sys.executable, "-c", "import sys; print('boom', flush=True); sys.exit(5)"]
    server = ServerProcess(argv, port, CPU)
    try:
        with pytest.raises(RuntimeError, match="status 5: boom"):
            await server.wait_ready(30)
    finally:
        await server.stop()


async def test_a_server_that_never_listens_times_out() -> None:
    port = free_port()
    server = ServerProcess([sys.executable, "-c", "import time; time.sleep(30)"], port, CPU)
    try:
        with pytest.raises(RuntimeError, match=r"did not listen within 0\.3 s"):
            await server.wait_ready(0.3)
    finally:
        await server.stop()
    assert server.popen.returncode is not None


async def test_a_server_gets_the_environment_it_is_given() -> None:
    port = free_port()
    code = "import os, sys; print(os.environ['BENCH_GREETING'], flush=True); sys.exit(5)"
    server = ServerProcess([sys.executable, "-c", code], port, CPU, env={"BENCH_GREETING": "hi"})
    try:
        with pytest.raises(RuntimeError, match="status 5: hi"):
            await server.wait_ready(30)
    finally:
        await server.stop()
