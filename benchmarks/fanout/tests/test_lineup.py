from __future__ import annotations

import importlib.util
import sys

import pytest

from benchmarks.fanout.lineup import (
    DEFAULT_LIVEPAGES_APP,
    PERSONAL_LIVEPAGES_APP,
    STARLETTE_APP,
    TARGET_NAMES,
    build_lineup,
    find_stario_python,
)
from benchmarks.fanout.page import PAGE_ENV, PageName


def test_every_known_target_can_be_built_in_the_order_asked() -> None:
    names = list(reversed(TARGET_NAMES))
    targets = build_lineup(names, DEFAULT_LIVEPAGES_APP, "/nonexistent/python")
    assert [t.name for t in targets] == names


def test_unknown_targets_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown target.*nginx"):
        build_lineup(["raw", "nginx"], DEFAULT_LIVEPAGES_APP, None)


def test_raw_runs_its_module_on_the_port() -> None:
    (raw,) = build_lineup(["raw"], DEFAULT_LIVEPAGES_APP, None)
    assert raw.unavailable is None
    assert raw.command(4321, 10) == [
        sys.executable,
        "-m",
        "benchmarks.fanout.targets.raw",
        "--port",
        "4321",
    ]


def test_asgi_targets_serve_their_factory_with_room_for_every_stream() -> None:
    starlette, livepages = build_lineup(["starlette", "livepages-granian"], "my.app:make", None)
    command = starlette.command(4321, 10_000)
    assert command[command.index("--app") + 1] == STARLETTE_APP
    assert command[command.index("--server") + 1] == "uvicorn"
    assert int(command[command.index("--backpressure") + 1]) > 10_000
    command = livepages.command(4321, 10)
    assert command[command.index("--app") + 1] == "my.app:make"
    assert command[command.index("--server") + 1] == "granian"


def test_granian_targets_say_when_granian_is_missing() -> None:
    (target,) = build_lineup(["starlette-granian"], DEFAULT_LIVEPAGES_APP, None)
    if importlib.util.find_spec("granian") is None:
        assert target.unavailable == "granian is not installed"
    else:
        assert target.unavailable is None


def test_stario_without_an_interpreter_is_unavailable() -> None:
    (target,) = build_lineup(["stario"], DEFAULT_LIVEPAGES_APP, "/nonexistent/python")
    assert target.unavailable is not None
    assert "/nonexistent/python: not found" in target.unavailable
    with pytest.raises(RuntimeError):
        target.command(1, 1)


def test_an_interpreter_without_stario_is_not_taken() -> None:
    python, tried = find_stario_python(sys.executable)
    if importlib.util.find_spec("stario") is None:
        assert python is None
        assert sys.executable in tried


def test_every_target_is_told_the_page_to_serve() -> None:
    targets = build_lineup(
        ["raw", "livepages-personal"], DEFAULT_LIVEPAGES_APP, None, PageName.SITE
    )
    assert all(dict(t.env)[PAGE_ENV] == "site" for t in targets)
    command = targets[1].command(4321, 10)
    assert command[command.index("--app") + 1] == PERSONAL_LIVEPAGES_APP
