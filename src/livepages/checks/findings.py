"""Findings: what ``livepages check`` reports, and the comments that silence one.

A :class:`Finding` is one problem at one place: a code (:class:`Code`), the file and line,
what is wrong and how to fix it. A comment on the finding's line, or on the comment and
decorator lines right above it, silences it::

    @app.page("/items/new")  # livepages: ignore[shadowed-route]
    class Legacy(Page):

    {# livepages: ignore[hardcoded-link] #}
    <a href="/old">...</a>

Several codes are separated by commas. There is no blanket ignore: a suppression says
which problem it accepts.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec

__all__ = ["Code", "Finding", "read_text", "relative", "suppressed_codes", "unsuppressed"]


class Code(enum.Enum):
    """The kinds of problem ``livepages check`` finds."""

    #: The app does not import (an exception, a syntax error).
    IMPORT_ERROR = "import-error"
    #: A page that cannot be registered: its path, a reserved field name, no ``render``.
    PAGE_DEFINITION = "page-definition"
    #: A page field whose type has no URL converter.
    PARAM_TYPE = "param-type"
    #: A parameter of ``render``, an action, a handler or a hook that cannot be injected.
    INJECTION = "injection"
    #: Two routes (or two actions) answer the same path and method.
    DUPLICATE_ROUTE = "duplicate-route"
    #: A route that an earlier one always answers first.
    SHADOWED_ROUTE = "shadowed-route"
    #: A template that a page, an include or an extends names, and no loader finds.
    MISSING_TEMPLATE = "missing-template"
    #: A template that does not compile (syntax, an unknown filter).
    TEMPLATE_ERROR = "template-error"
    #: A written-out link or static URL to one of the app's own routes.
    HARDCODED_LINK = "hardcoded-link"
    #: A written-out ``@post('/...')`` (any verb) to one of the app's own routes.
    HARDCODED_ACTION = "hardcoded-action"
    #: ``url()`` of something that is not a registered page.
    UNKNOWN_PAGE = "unknown-page"
    #: ``url()`` with a parameter the page does not have, without one it needs, or a bad value.
    UNKNOWN_PARAM = "unknown-param"
    #: ``action(page.x)`` in a template of a page that has no action ``x``.
    FOREIGN_ACTION = "foreign-action"
    #: A personal page's template using the session or tab in a way that splits its
    #: viewers into renders of their own (``livepages.personal``).
    PERSONAL_RENDER = "personal-render"


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One problem: where it is, what is wrong, and how to fix it."""

    code: Code
    #: The file (a path, or a template's name when its loader has no file).
    file: str
    line: int
    message: str
    hint: str

    def describe(self, *, start: Path | None = None) -> str:
        """``file:line: code: message`` and an indented hint, for a terminal or CI log."""
        where = relative(self.file, start)
        return f"{where}:{self.line}: {self.code.value}: {self.message}\n    hint: {self.hint}"


def relative(file: str, start: Path | None = None) -> str:
    """``file`` relative to ``start`` (the current folder) when it is inside it."""
    path = Path(file)
    if not path.is_absolute():
        return file
    try:
        return str(path.relative_to((start or Path.cwd()).resolve()))
    except ValueError:
        return file


_IGNORE = re.compile(r"#\s*livepages:\s*ignore\[([^\]]*)\]")
#: Lines above a finding whose comments still count: comments and decorators.
_HEAD_LINES = ("#", "{#", "@")


def suppressed_codes(lines: list[str], line: int) -> set[str]:
    """The codes silenced for ``line`` (1-based): by a comment on it, or on the comment
    and decorator lines right above it (``@app.page(...)  # livepages: ignore[...]``)."""
    codes: set[str] = set()
    candidates = [line]
    above = line - 1
    while 1 <= above <= len(lines) and lines[above - 1].lstrip().startswith(_HEAD_LINES):
        candidates.append(above)
        above -= 1
    for number in candidates:
        if 1 <= number <= len(lines):
            for match in _IGNORE.finditer(lines[number - 1]):
                codes |= {code.strip() for code in match[1].split(",")}
    return codes


def unsuppressed(findings: Iterable[Finding], source: Callable[[str], str | None]) -> list[Finding]:
    """The findings no comment silences, sorted by file and line, without repeats.

    ``source(file)`` gives the text of a file (or a template); None when it is unknown.
    """
    cache: dict[str, list[str]] = {}
    kept: list[Finding] = []
    for finding in sorted(set(findings), key=lambda f: (f.file, f.line, f.code.value)):
        if finding.file not in cache:
            text = source(finding.file)
            cache[finding.file] = text.splitlines() if text is not None else []
        if finding.code.value not in suppressed_codes(cache[finding.file], finding.line):
            kept.append(finding)
    return kept


def read_text(file: str) -> str | None:
    """A file's text, or None when it cannot be read."""
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
