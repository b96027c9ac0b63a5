from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette

from benchmarks.fanout.lineup import STARLETTE_APP
from benchmarks.fanout.serve import EXIT_UNAVAILABLE, load_app, main


def test_load_app_calls_the_factory() -> None:
    assert isinstance(load_app(STARLETTE_APP), Starlette)


@pytest.mark.parametrize("spec", ["no_colon", ":create_app", "benchmarks.fanout.page:"])
def test_load_app_needs_module_and_factory(spec: str) -> None:
    with pytest.raises(ValueError, match="expected module:factory"):
        load_app(spec)


BROKEN = "benchmarks.fanout.tests.targets.broken:create_app"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (BROKEN, "NotImplementedError: .*placeholder"),
        ("benchmarks.fanout.no_such_module:create_app", "ModuleNotFoundError"),
        ("benchmarks.fanout.page:no_such_factory", "AttributeError"),
        ("bad spec", "ValueError: expected module:factory"),
    ],
)
def test_main_reports_an_app_that_cannot_run(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--app", spec, "--port", "1"]) == EXIT_UNAVAILABLE
    assert re.search(message, capsys.readouterr().err.strip().splitlines()[-1])


def test_main_prints_the_reason_as_its_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--app", BROKEN, "--port", "1"]) == EXIT_UNAVAILABLE
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("NotImplementedError: ")
    assert "on purpose" in last
