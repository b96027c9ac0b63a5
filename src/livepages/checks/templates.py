"""Template checks: each template of an app parsed with Jinja2 and read as a syntax tree.

What is checked, with the line of the node at fault:

- every template compiles (syntax, unknown filters and tests);
- every template that Python code renders by name, and every ``include``, ``extends`` and
  ``import`` of a literal name, exists;
- ``url(Page, ...)`` names a registered page, with parameters it has and the ones it needs
  (and values it accepts, when they are literals);
- ``action(page.name)`` names an action of every page that renders the template (through
  ``self.template``, directly or by ``include``/``extends``);
- no written-out link (``href``, ``src``, ``action``, ``formaction``) and no Datastar
  ``@get('/...')``/``@post('/...')`` leads to one of the app's own pages, actions or static
  files: ``url()``, ``action()`` and ``asset()`` add the mount prefix, the CSRF header and
  the content hash, and break loudly when the route changes.

Which names a template receives is known from the Python calls that render it (their
keyword arguments), so ``url(room)`` with ``room`` passed in is left alone, while
``url(Rooom)`` (a typo) is reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import jinja2
from jinja2 import nodes

from livepages.app import App
from livepages.checks.findings import Code, Finding
from livepages.checks.personal import personal_uses
from livepages.checks.sources import TemplateUse, locate
from livepages.checks.table import RouteEntry, RouteKind
from livepages.pages import Page, url
from livepages.plans import PagePlan

__all__ = ["Parsed", "TemplateChecker"]

_LINK = re.compile(r"\b(?:href|src|action|formaction)\s*=\s*[\"']?(/[^\"'\s>]*)", re.IGNORECASE)
_VERB = re.compile(r"@(?:get|post|put|patch|delete)\(\s*([\"'`])(/[^\"'`]*)\1")
#: Stands for an expression's output inside a written-out URL (``/rooms/{{ room }}``).
_HOLE = "\x00"
#: What a hole is tried as when matching routes: any segment, or a number.
_HOLE_FILLS = ("lp-sample", "1")
#: The route kinds that url(), action() and asset() build: others are the app's own business.
_BUILT = frozenset({RouteKind.PAGE, RouteKind.STREAM, RouteKind.ACTION, RouteKind.STATIC})


@dataclass
class Parsed:
    """One template: its source, where it is, and its syntax tree (None if it does not parse)."""

    name: str
    #: Its file, or its name when the loader has no file (a DictLoader).
    file: str
    source: str
    tree: nodes.Template | None
    #: The names it assigns itself (``set``, ``for``, macro parameters).
    locals: frozenset[str] = frozenset()
    #: The templates it includes, extends or imports by literal name.
    references: list[tuple[str, int, bool]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who renders a template: a page (or None) and the names it passes (None: unknown)."""

    plan: PagePlan | None
    names: frozenset[str] | None


class TemplateChecker:
    """Checks the templates of one livepages app."""

    def __init__(self, app: App, uses: list[TemplateUse], table: list[RouteEntry]) -> None:
        self.app = app
        self.env: jinja2.Environment = app.templates.env
        self.uses = uses
        #: The app's own routes (not those of apps mounted in it), for written-out URLs.
        self.routes = [e for e in table if e.app is app and e.kind in _BUILT and e.pattern]
        self.parsed: dict[str, Parsed] = {}
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        """Every finding in the app's templates and in the calls that render them."""
        for name in self._listed():
            self._load(name)
        callers = self._callers()
        for parsed in list(self.parsed.values()):
            if parsed.tree is not None:
                self._check(parsed, callers.get(parsed.name, []))
        return self.findings

    def sources(self) -> dict[str, str]:
        """The text of every template read, by the file name findings carry."""
        return {parsed.file: parsed.source for parsed in self.parsed.values()}

    # -- loading --------------------------------------------------------------------------

    def _listed(self) -> list[str]:
        names: list[str] = []
        if self.env.loader is not None:
            try:
                names = self.env.loader.list_templates()
            except TypeError:  # a loader that cannot list its templates
                names = []
        return sorted(set(names) | {use.name for use in self.uses})

    def _load(self, name: str) -> Parsed | None:
        """Read and parse ``name`` once; None when no loader has it."""
        if name in self.parsed:
            return self.parsed[name]
        loader = self.env.loader
        try:
            if loader is None:
                raise jinja2.TemplateNotFound(name)
            source, filename, _ = loader.get_source(self.env, name)
        except jinja2.TemplateNotFound:
            return None
        except (OSError, UnicodeDecodeError):
            return None  # not a text file (an image in the templates folder, say)
        parsed = Parsed(name, filename or name, source, None)
        self.parsed[name] = parsed
        try:
            tree = self.env.parse(source, name, filename)
        except jinja2.TemplateSyntaxError as error:
            self._template_error(parsed, error)
            return parsed
        try:
            self.env.compile(tree, name, filename)  # unknown filters and tests fail here
        except jinja2.TemplateSyntaxError as error:
            self._template_error(parsed, error)  # the tree is still worth reading
        parsed.tree = tree
        parsed.locals = frozenset(
            n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")
        )
        for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            if not isinstance(
                node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport
            ):
                continue  # (find_all is typed loosely)
            optional = isinstance(node, nodes.Include) and node.ignore_missing
            for target in _literal_names(node.template):
                parsed.references.append((target, node.lineno, optional))
        for target, line, optional in parsed.references:
            if self._load(target) is None and not optional:
                self._add(
                    Code.MISSING_TEMPLATE,
                    parsed.file,
                    line,
                    f"template {target!r} does not exist",
                    self._where_templates(),
                )
        return parsed

    def _template_error(self, parsed: Parsed, error: jinja2.TemplateSyntaxError) -> None:
        hint = "fix the template (see the Jinja2 documentation)"
        self._add(Code.TEMPLATE_ERROR, parsed.file, error.lineno or 1, str(error.message), hint)

    def _where_templates(self) -> str:
        folders = getattr(self.env.loader, "searchpath", None)
        if folders:
            return f"create it in {', '.join(folders)}, or fix the name"
        return "add it to the app's template loader, or fix the name"

    # -- who renders what -----------------------------------------------------------------

    def _callers(self) -> dict[str, list[_Caller]]:
        """For each template, the pages and calls that render it, includes followed."""
        direct: list[tuple[str, _Caller]] = []
        page_lines = self._page_class_lines()
        for use in self.uses:
            if use.class_line is not None and (use.file, use.class_line) not in page_lines:
                continue  # a class that is not one of this app's pages
            if self._load(use.name) is None:
                self._add(
                    Code.MISSING_TEMPLATE,
                    use.file,
                    use.line,
                    f"template {use.name!r} does not exist",
                    self._where_templates(),
                )
                continue
            if use.class_line is None:
                direct.append((use.name, _Caller(None, use.keys)))
            else:  # self.template() in a page class (of this app: others are not ours)
                plans = page_lines.get((use.file, use.class_line), [])
                direct += [(use.name, _Caller(plan, use.keys)) for plan in plans]
        callers: dict[str, list[_Caller]] = {}
        queue = list(direct)
        while queue:
            name, caller = queue.pop()
            known = callers.setdefault(name, [])
            if caller in known:
                continue
            known.append(caller)
            parsed = self.parsed.get(name)
            if parsed is None:
                continue
            names = caller.names | parsed.locals if caller.names is not None else None
            for target, _, _ in parsed.references:
                queue.append((target, _Caller(caller.plan, names)))
        return callers

    def _page_class_lines(self) -> dict[tuple[str, int | None], list[PagePlan]]:
        """(file, ``class`` line) of each page class and its page base classes -> pages."""
        lines: dict[tuple[str, int | None], list[PagePlan]] = {}
        for plan in self.app.pages:
            for cls in plan.cls.__mro__:
                if not issubclass(cls, Page) or cls is Page:
                    continue
                place = locate(cls)
                if place is not None:
                    lines.setdefault((place.file, place.line), []).append(plan)
        return lines

    # -- one template ---------------------------------------------------------------------

    def _check(self, parsed: Parsed, callers: list[_Caller]) -> None:
        assert parsed.tree is not None
        for call in parsed.tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name == "url":
                self._check_url(parsed, call, callers)
            elif isinstance(call.node, nodes.Name) and call.node.name == "action":
                self._check_action(parsed, call, callers)
        self._check_written_urls(parsed)
        self._check_personal(parsed, callers)

    def _check_personal(self, parsed: Parsed, callers: list[_Caller]) -> None:
        """Personal values used in ways that keep a personal page from sharing renders."""
        assert parsed.tree is not None
        for caller in callers:
            if caller.plan is None or not caller.plan.personal or caller.names is None:
                continue
            names = frozenset(caller.plan.personal) & caller.names
            page = caller.plan.cls.__name__
            for use in personal_uses(parsed.tree, names):
                self._add(
                    Code.PERSONAL_RENDER,
                    parsed.file,
                    use.line,
                    f"{use.text} needs each viewer's own value: viewers of {page} with "
                    "different values are rendered separately on every change",
                    "print the value as it is ({{ session.data.name }}) or test that it is "
                    "there ({% if ... %}); keep text derived from it (upper-cased, counted, "
                    "compared) in the session or tab when it changes (docs/live.md, "
                    "Personalised pages)",
                )

    def _check_url(self, parsed: Parsed, call: nodes.Call, callers: list[_Caller]) -> None:
        line = call.lineno
        if not call.args:
            self._add(
                Code.UNKNOWN_PAGE,
                parsed.file,
                line,
                "url() names no page",
                "url(Page, name=value, ...) or url(page_object)",
            )
            return
        first = call.args[0]
        if isinstance(first, nodes.Const):
            self._add(
                Code.UNKNOWN_PAGE,
                parsed.file,
                line,
                f"url({first.value!r}): url() takes a page class, not a string",
                "name the class: url(PageClass, ...); every registered page is a global",
            )
            return
        if not isinstance(first, nodes.Name) or first.name in parsed.locals:
            return
        value = self.env.globals.get(first.name)
        if isinstance(value, type) and issubclass(value, Page):
            self._check_params(parsed, call, value)
        elif value is not None:
            self._add(
                Code.UNKNOWN_PAGE,
                parsed.file,
                line,
                f"url({first.name}): {first.name} is a template global, not a page",
                "url() takes a page class registered with @app.page, or a page object",
            )
        elif _unknown_name(first.name, callers):
            self._add(
                Code.UNKNOWN_PAGE,
                parsed.file,
                line,
                f"url({first.name}): {first.name} is not a registered page "
                "(and no caller passes it to this template)",
                f"register it with @app.page, or fix the name ({self._page_names()})",
            )

    def _page_names(self) -> str:
        names = sorted(plan.cls.__name__ for plan in self.app.pages)
        return "pages: " + ", ".join(names) if names else "the app has no pages"

    def _check_params(self, parsed: Parsed, call: nodes.Call, page: type[Page]) -> None:
        spec = page.__dict__.get("__page_spec__")
        if spec is None or call.dyn_args is not None or call.dyn_kwargs is not None:
            return  # not registered (reported where it failed), or **params: unknowable
        line = call.lineno
        fields = ", ".join(spec.converters) or "none"
        if len(call.args) > 1:
            self._add(
                Code.UNKNOWN_PARAM,
                parsed.file,
                line,
                f"url({page.__name__}, ...): parameters go by name",
                f"write them as name=value; {page.__name__}'s parameters: {fields}",
            )
            return
        given = {keyword.key for keyword in call.kwargs}
        problems = [
            f"{page.__name__} has no parameter {name!r}"
            for name in sorted(given - set(spec.converters))
        ]
        required = [n for n in spec.converters if n not in spec.defaults]
        problems += [f"{page.__name__} needs {name!r}" for name in required if name not in given]
        if not problems and all(isinstance(k.value, nodes.Const) for k in call.kwargs):
            values = {k.key: k.value.value for k in call.kwargs if isinstance(k.value, nodes.Const)}
            try:
                url(page, **values)
            except (TypeError, ValueError) as error:
                problems.append(str(error))
        for problem in problems:
            self._add(
                Code.UNKNOWN_PARAM,
                parsed.file,
                line,
                problem if problem.startswith("url(") else f"url({page.__name__}): {problem}",
                f"{page.__name__}'s parameters: {fields}",
            )

    def _check_action(self, parsed: Parsed, call: nodes.Call, callers: list[_Caller]) -> None:
        if not call.args or "page" in parsed.locals:
            return
        target = call.args[0]
        if not (isinstance(target, nodes.Getattr) and isinstance(target.node, nodes.Name)):
            return
        if target.node.name != "page":
            return
        seen: set[int] = set()
        for caller in callers:
            plan = caller.plan
            if plan is None or id(plan) in seen or target.attr in plan.actions:
                continue
            seen.add(id(plan))
            self._add(
                Code.FOREIGN_ACTION,
                parsed.file,
                call.lineno,
                f"action(page.{target.attr}): {self._not_an_action(plan, target.attr)}, "
                f"and {plan.cls.__name__} renders this template",
                f"use an action of {plan.cls.__name__} ({_actions_of(plan)}), or make "
                "it app-wide (@app.action) and pass it to the template",
            )

    def _not_an_action(self, plan: PagePlan, name: str) -> str:
        owners = [p.cls.__name__ for p in self.app.pages if name in p.actions]
        if owners:
            return f"{name} is an action of {', '.join(owners)}, not of {plan.cls.__name__}"
        if hasattr(plan.cls, name):
            return f"{plan.cls.__name__}.{name} is not an action (no @action)"
        return f"{plan.cls.__name__} has no action {name!r}"

    # -- written-out URLs -----------------------------------------------------------------

    def _check_written_urls(self, parsed: Parsed) -> None:
        assert parsed.tree is not None
        for output in parsed.tree.find_all(nodes.Output):
            text, starts = _flatten(output)
            for pattern, code in ((_LINK, Code.HARDCODED_LINK), (_VERB, Code.HARDCODED_ACTION)):
                for match in pattern.finditer(text):
                    written = match[match.lastindex or 1]
                    entry = self._route_for(written)
                    if entry is not None:
                        line = _line_at(starts, match.start())
                        shown = written.replace(_HOLE, "{{ ... }}")
                        self._add(
                            code,
                            parsed.file,
                            line,
                            f"{shown!r} is written out: it is {entry.describe()} of this app",
                            _hint(entry, written),
                        )

    def _route_for(self, written: str) -> RouteEntry | None:
        path = re.split(r"[?#]", written, maxsplit=1)[0]
        if path.startswith("//"):
            return None  # another site
        for fill in _HOLE_FILLS:
            candidate = path.replace(_HOLE, fill)
            for entry in self.routes:
                assert entry.pattern is not None
                if entry.pattern.fullmatch(candidate):
                    return entry
        return None

    def _add(self, code: Code, file: str, line: int, message: str, hint: str) -> None:
        self.findings.append(Finding(code=code, file=file, line=line, message=message, hint=hint))


def _literal_names(node: nodes.Expr) -> Iterator[str]:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, nodes.List | nodes.Tuple):
        for item in node.items:
            yield from _literal_names(item)


def _unknown_name(name: str, callers: list[_Caller]) -> bool:
    """Whether ``name`` surely names nothing: no caller passes it (callers all known), or,
    for a template that no call is known to render, it is spelled like a class."""
    if callers:
        return all(c.names is not None and name not in c.names for c in callers)
    return name[:1].isupper()


def _actions_of(plan: PagePlan) -> str:
    return ", ".join(sorted(plan.actions)) or "it has none"


def _flatten(output: nodes.Output) -> tuple[str, list[tuple[int, int, str]]]:
    """The literal text of an output, expressions as holes, and where each piece starts:
    (offset in the text, line, the piece)."""
    text = ""
    starts: list[tuple[int, int, str]] = []
    for node in output.nodes:
        piece = node.data if isinstance(node, nodes.TemplateData) else _HOLE
        starts.append((len(text), node.lineno, piece))
        text += piece
    return text, starts


def _line_at(starts: list[tuple[int, int, str]], offset: int) -> int:
    line = starts[0][1] if starts else 1
    for start, first_line, piece in starts:
        if start > offset:
            break
        line = first_line + piece[: offset - start].count("\n")
    return line


def _hint(entry: RouteEntry, written: str) -> str:
    if entry.kind is RouteKind.PAGE and isinstance(entry.owner, type):
        spec = entry.owner.__dict__.get("__page_spec__")
        params = "".join(f", {name}=..." for name in (spec.path_params if spec else ()))
        return (
            f"write {{{{ url({entry.target}{params}) }}}}: it adds the mount prefix and "
            "checks the parameters"
        )
    if entry.kind is RouteKind.ACTION:
        name = entry.path.rsplit("/", 1)[-1]
        if entry.note == "app-wide":
            return f"pass the action to the template and write {{{{ action({name}) }}}}"
        return f"write {{{{ action(page.{name}) }}}}: it adds the CSRF and tab headers"
    if entry.kind is RouteKind.STATIC:
        prefix = entry.path.removesuffix("{path}")
        return f"write {{{{ asset('{written.removeprefix(prefix)}') }}}}: a content-hashed URL"
    return "the page opens its own stream: remove this"
