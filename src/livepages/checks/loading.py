"""Loading the app for a check: registrations that fail are collected, an import that fails
is a finding at the line that raised.

The import itself is the caller's (``livepages.cli.project.load_app`` for the command), so
the checks know nothing of how a project names its app.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livepages.checks.findings import Code, Finding
from livepages.checks.sources import Location, locate
from livepages.registration import Kind, Rejected, collecting

__all__ = ["Loaded", "Loader", "load"]

_CODES = {
    Kind.DEFINITION: Code.PAGE_DEFINITION,
    Kind.PARAMETER: Code.PARAM_TYPE,
    Kind.INJECTION: Code.INJECTION,
}
_HINTS = {
    Kind.DEFINITION: "see docs/pages.md: a page is a class with render() whose fields are "
    "its path and query parameters",
    Kind.PARAMETER: "use str, int, float, Decimal, bool, an Enum, UUID, date, datetime or "
    "X | None, or Annotated[T, Converter(parse, format)]",
    Kind.INJECTION: "annotate it with a type livepages injects (Request, Session, Tab, SSE, "
    "App, a dataclass of signals, Annotated[T, Query]); see docs/actions.md",
}
#: livepages itself: a frame in it is never the line to fix.
_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass
class Loaded:
    """The app (None if it did not import) and the findings of loading it."""

    app: Any
    #: Where the app is defined: the spec's module and the line of its attribute.
    home: Location | None
    findings: list[Finding] = field(default_factory=list)


#: Imports the app named by a spec (``module:attribute``) from a project folder.
Loader = Callable[[str, Path], Any]


def load(spec: str, root: Path, loader: Loader) -> Loaded:
    """Import the app named ``spec`` with ``loader``; an ``ImportError`` of the spec's own
    module (it does not exist) and the loader's own errors propagate."""
    app: Any = None
    findings: list[Finding] = []
    with collecting() as rejected:
        try:
            app = loader(spec, root)
        except ImportError as error:
            if not _inside_project(error, root):
                raise
            findings.append(_import_error(error, root))
        except Exception as error:  # the app's own code raised while importing
            findings.append(_import_error(error, root))
    findings += [_rejected(item, root) for item in rejected]
    return Loaded(app, _home(spec), findings)


def _inside_project(error: ImportError, root: Path) -> bool:
    """An import that failed inside the project, not a module the spec names wrongly."""
    return len(traceback.extract_tb(error.__traceback__)) > 0 and _frame(error, root) is not None


def _rejected(item: Rejected, root: Path) -> Finding:
    place = locate(item.target, item.member) or Location(str(root), 1)
    return Finding(
        code=_CODES[item.kind],
        file=place.file,
        line=place.line,
        message=str(item.error),
        hint=_HINTS[item.kind],
    )


def _import_error(error: BaseException, root: Path) -> Finding:
    place = _frame(error, root) or Location(str(root), 1)
    return Finding(
        code=Code.IMPORT_ERROR,
        file=place.file,
        line=place.line,
        message=f"the app does not import: {type(error).__name__}: {error}",
        hint="fix the error; importing the module in Python shows the whole traceback",
    )


def _frame(error: BaseException, root: Path) -> Location | None:
    """The innermost place in the project's own code where ``error`` was raised."""
    if isinstance(error, SyntaxError) and error.filename:
        return Location(error.filename, error.lineno or 1)
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if _is_project_file(Path(f.filename), root)]
    if not ours:
        return None
    frame = ours[-1]
    return Location(frame.filename, frame.lineno or 1)


def _is_project_file(path: Path, root: Path) -> bool:
    if not path.is_absolute():
        return False  # "<frozen importlib._bootstrap>", "<string>"
    try:
        path = path.resolve()
    except OSError:
        return False
    if path.is_relative_to(_PACKAGE) or "site-packages" in path.parts:
        return False
    return path.is_relative_to(root.resolve())


def _home(spec: str) -> Location | None:
    """The module the spec names and the line that defines its attribute."""
    module_name, _, attribute = spec.partition(":")
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    name = re.escape(attribute.removesuffix("()"))
    defines = re.compile(rf"^(?:(?:async\s+)?def\s+{name}\b|{name}\s*[:=])")
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return Location(file, 1)
    for number, text in enumerate(lines, start=1):
        if defines.match(text):
            return Location(file, number)
    return Location(file, 1)
