"""``livepages check``: every kind of problem found at its file and line, the examples clean.

The broken apps in ``tests/cli/broken/`` mark each line with a problem with a comment
``expect: <code>``; the command, run as a subprocess, must report exactly those.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from livepages import App, Page
from livepages.checks import Code, Finding
from livepages.checks.conflicts import route_conflicts
from livepages.checks.findings import suppressed_codes
from livepages.checks.sources import Location
from livepages.checks.table import route_table
from livepages.checks.templates import TemplateChecker
from livepages.templates import Templates

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "broken"
EXPECT = re.compile(r"expect: ([a-z-]+)")
REPORTED = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+): (?P<code>[a-z-]+): ", re.MULTILINE)


def livepages(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livepages", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def expected(*files: Path) -> set[tuple[str, int, str]]:
    """(file relative to the repo, line, code) of every ``expect:`` comment in ``files``."""
    found = set()
    for path in files:
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            for code in EXPECT.findall(text):
                found.add((str(path.relative_to(ROOT)), number, code))
    return found


def reported(output: str) -> set[tuple[str, int, str]]:
    return {(m["file"], int(m["line"]), m["code"]) for m in REPORTED.finditer(output)}


def test_every_kind_of_problem_is_found_at_its_file_and_line() -> None:
    result = livepages("check", "tests.cli.broken.app:app")
    assert result.returncode == 1, result.stderr
    files = [BROKEN / "app.py", *sorted((BROKEN / "templates").glob("*.html"))]
    want = expected(*files)
    assert reported(result.stdout) == want, result.stdout
    # Each kind is there (the import error has a module of its own, below).
    assert {code for _, _, code in want} == {c.value for c in Code} - {"import-error"}
    # Every finding says how to fix it, and the summary counts them.
    assert result.stdout.count("    hint: ") == len(REPORTED.findall(result.stdout))
    assert f"{len(REPORTED.findall(result.stdout))} problem(s) found" in result.stdout


def test_the_ignore_comments_silence_exactly_their_finding() -> None:
    result = livepages("check", "tests.cli.broken.app:app")
    # EditItem's path names {id}, which it has no field for: silenced on its decorator.
    assert "EditItem" not in result.stdout
    # The written-out "/" below a template comment: silenced; "/items/3" is not.
    assert "'/' is written out" not in result.stdout
    assert "'/items/3' is written out" in result.stdout


def test_an_app_that_does_not_import_is_a_finding_at_the_line_that_raised() -> None:
    result = livepages("check", "tests.cli.broken.unimportable:app")
    assert result.returncode == 1
    assert reported(result.stdout) == expected(BROKEN / "unimportable.py")
    assert "TypeError: @on(Pinged): ['lobby'] not in subject" in result.stdout


EXAMPLES = [
    "examples.index:create_app",
    "examples.counter.app:app",
    "examples.todolist.app:app",
    "examples.chat.app:app",
    "examples.game_of_life.app:app",
    "examples.signup.app:app",
    "examples.notes.app:app",
]


@pytest.mark.parametrize("spec", EXAMPLES)
def test_every_example_passes(spec: str) -> None:
    result = livepages("check", spec)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found in" in result.stdout
    assert " 0 page(s)" not in result.stdout  # it did look at something


def test_the_examples_together_are_eight_apps_and_their_templates() -> None:
    result = livepages("check", "examples.index:create_app")
    assert "no problems found in 8 app(s), 20 page(s), 24 template(s)" in result.stdout


def test_a_plain_starlette_app_has_only_its_routes_checked() -> None:
    result = livepages("check", "examples.sdk_demo:app")
    assert result.returncode == 0
    assert "holds no livepages app" in result.stderr


def test_no_app_to_check_is_a_usage_error(tmp_path: Path) -> None:
    result = livepages("check", cwd=tmp_path)  # no pyproject, no APP
    assert result.returncode == 2
    assert "[tool.livepages]" in result.stderr
    result = livepages("check", "no_such_module_here:app", cwd=tmp_path)
    assert result.returncode == 2
    assert "No module named 'no_such_module_here'" in result.stderr


# -- the pieces, in process -------------------------------------------------------------

#: Pieces of templates that reach the checker's branches (written-out URLs, url(), action()).
TEMPLATE_BITS = [
    '<a href="/items/{{ x }}">',
    "{{ url(Item, id=3) }}{{ url(Item, id='x', y=1) }}{{ url('a') }}{{ url(Nope) }}",
    "{{ action(page.x) }}",
    "@post('/items/1/_action/x')",
    '{% include "nope.html" %}{% extends x %}',
    "{% if %}",
]


@pytest.mark.parametrize(
    ("lines", "line", "codes"),
    [
        (["x = 1  # livepages: ignore[a, b]"], 1, {"a", "b"}),
        (["# livepages: ignore[a]", "x = 1"], 2, {"a"}),
        (["{# livepages: ignore[a] #}", "<a href='/'>"], 2, {"a"}),
        (["@app.page('/x')  # livepages: ignore[a]", "@on(E)", "class X(Page):"], 3, {"a"}),
        (["y = 2  # livepages: ignore[a]", "x = 1"], 2, set()),  # code above: not for x
        (["x = 1  # livepages: ignore"], 1, set()),  # no blanket ignore
    ],
)
def test_suppression_comments(lines: list[str], line: int, codes: set[str]) -> None:
    assert suppressed_codes(lines, line) == codes


def test_a_finding_prints_file_line_code_message_and_hint(tmp_path: Path) -> None:
    finding = Finding(
        code=Code.UNKNOWN_PAGE, file=str(tmp_path / "a.html"), line=3, message="m", hint="h"
    )
    assert finding.describe(start=tmp_path) == "a.html:3: unknown-page: m\n    hint: h"


def test_a_route_after_a_mount_of_its_prefix_is_shadowed() -> None:
    inner = App()

    @inner.page("/")
    class Home(Page):
        def render(self) -> str:
            return ""

    async def stats(request: object) -> None:
        raise NotImplementedError

    outer = Starlette(routes=[Mount("/admin", app=inner), Route("/admin/stats", stats)])
    table = route_table(outer)
    findings = route_conflicts(table, lambda entry: Location("app.py", 1))
    [finding] = findings
    assert finding.code is Code.SHADOWED_ROUTE
    assert "/admin/stats is never reached: the mount of a livepages app (/admin)" in (
        finding.message
    )
    # Routes inside the mount are not shadowed by the mount that holds them.
    assert all("Home" not in f.message for f in findings)


@given(st.text(max_size=300) | st.sampled_from(TEMPLATE_BITS).map(lambda bit: bit * 3))
def test_any_template_text_gives_findings_never_an_exception(source: str) -> None:
    templates = Templates(loader=jinja2.DictLoader({"t.html": source}))
    app = App(templates=templates)

    @app.page("/items/{id}")
    class Item(Page):
        id: int

        def render(self) -> str:
            return ""

    findings = TemplateChecker(app, [], route_table(app)).run()
    assert all(isinstance(f, Finding) and f.line >= 1 for f in findings)


@given(st.lists(st.text(max_size=80), max_size=6), st.integers(min_value=-2, max_value=8))
def test_any_lines_give_a_set_of_codes(lines: list[str], line: int) -> None:
    assert isinstance(suppressed_codes(lines, line), set)
