"""Where things are in the app's source: the line of a class, a function or a field, and
the templates that Python code renders.

Lines are found with ``inspect`` (so classes defined inside a factory function are found
too) and Python's own ``ast``; nothing is imported or run here.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Location", "TemplateUse", "locate", "template_uses"]


@dataclass(frozen=True, slots=True)
class Location:
    """A file and a 1-based line."""

    file: str
    line: int


_HEAD = re.compile(r"\s*(?:async\s+def|def|class)\s")


def locate(target: object, member: str | None = None) -> Location | None:
    """The ``class`` or ``def`` line of ``target`` (past its decorators), or the line of
    its field ``member``; None for what has no Python source (a builtin, a lambda in C)."""
    target = getattr(target, "__func__", target)  # a bound method: its function
    try:
        file = inspect.getsourcefile(target)  # type: ignore[arg-type]
        lines, start = inspect.getsourcelines(target)  # type: ignore[arg-type]
    except (TypeError, OSError):
        return None
    if file is None:
        return None
    if member is not None:
        field = re.compile(rf"\s*{re.escape(member)}\s*:")
        for offset, text in enumerate(lines):
            if field.match(text):
                return Location(file, start + offset)
    for offset, text in enumerate(lines):
        if _HEAD.match(text):
            return Location(file, start + offset)
    return Location(file, start)


@dataclass(frozen=True, slots=True)
class TemplateUse:
    """A call in Python that renders a template named by a string literal."""

    name: str
    file: str
    line: int
    #: The names the call passes to the template; None when it passes ``**something``.
    keys: frozenset[str] | None
    #: The ``class`` line of the class whose body holds a ``self.template(...)`` call.
    class_line: int | None = None


# The calls that render a template by name: Page.template, Templates.render (app.templates
# or a variable named templates) and Jinja2's get_template.
_RENDERERS = frozenset({"template", "render", "get_template"})


def template_uses(file: str) -> list[TemplateUse]:
    """Every template that ``file`` renders by a literal name, with the names it passes."""
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"), file)
    except (OSError, UnicodeDecodeError, SyntaxError):
        return []
    found: list[TemplateUse] = []

    def visit(node: ast.AST, class_line: int | None) -> None:
        if isinstance(node, ast.ClassDef):
            class_line = node.lineno
        if isinstance(node, ast.Call):
            use = _use(node, file, class_line)
            if use is not None:
                found.append(use)
        for child in ast.iter_child_nodes(node):
            visit(child, class_line)

    visit(tree, None)
    return found


def _use(call: ast.Call, file: str, class_line: int | None) -> TemplateUse | None:
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in _RENDERERS:
        return None
    if not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    name = call.args[0].value
    if not isinstance(name, str):
        return None
    receiver = ast.unparse(func.value)
    on_page = func.attr == "template" and receiver == "self"
    if func.attr == "render" and not receiver.endswith("templates"):
        return None  # some other render(): not a template lookup
    names = frozenset(k.arg for k in call.keywords if k.arg is not None)
    keys: frozenset[str] | None = names | {"page"} if on_page else names  # the page comes along
    if any(k.arg is None for k in call.keywords) or func.attr == "get_template":
        keys = None  # **context, or a template whose render() comes later
    return TemplateUse(name, file, call.lineno, keys, class_line if on_page else None)
