"""Routes that collide: two routes for one path and method, or one that an earlier route
always answers first.

A router tries its routes in order and the first match wins, so a route is dead (or, for a
page whose parameter is typed, answers 400) when an earlier one matches every path it
would take. Each route is tried against the routes before it with a sample path: its own
path with every ``{parameter}`` filled in with a value its converter accepts.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from starlette.routing import compile_path

from livepages.actions import action_spec
from livepages.checks.findings import Code, Finding
from livepages.checks.sources import Location, locate
from livepages.checks.table import RouteEntry, RouteKind
from livepages.plans import PagePlan

__all__ = ["action_clashes", "route_conflicts"]

#: Sample values per Starlette converter type, for filling in a path's parameters.
_SAMPLES = {
    "StringConvertor": "lp-sample",
    "PathConvertor": "lp-sample/lp-sample",
    "IntegerConvertor": "1",
    "FloatConvertor": "1.5",
    "UUIDConvertor": "00000000-0000-4000-8000-000000000000",
}
_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def route_conflicts(
    table: list[RouteEntry], where: Callable[[RouteEntry], Location]
) -> list[Finding]:
    """A finding for every route of ``table`` that an earlier route takes first.

    ``where(entry)`` is the place to report a route at (its page class or function).
    """
    findings = []
    reported: set[int] = set()  # owners: a page whose document is shadowed, is, stream too
    for index, entry in enumerate(table):
        sample = _sample(entry)
        if sample is None or (entry.owner is not None and id(entry.owner) in reported):
            continue
        for earlier in table[:index]:
            if _takes(earlier, entry, sample):
                findings.append(_finding(entry, earlier, where(entry)))
                reported.add(id(entry.owner))
                break
    return findings


def _sample(entry: RouteEntry) -> str | None:
    """A path ``entry`` takes, or None for rows that are not routes of their own."""
    if entry.pattern is None or entry.kind is RouteKind.HOST:
        return None
    path = entry.path + "/x" if entry.kind is RouteKind.MOUNT else entry.path
    _, _, convertors = compile_path(path)

    def fill(match: re.Match[str]) -> str:
        return _SAMPLES.get(type(convertors[match[1]]).__name__, "lp-sample")

    return _PARAMETER.sub(fill, path)


def _takes(earlier: RouteEntry, entry: RouteEntry, sample: str) -> bool:
    """Whether ``earlier`` answers ``sample`` before ``entry`` can."""
    if earlier.pattern is None or earlier.kind is RouteKind.HOST:
        return False
    if earlier.route is not None and (
        earlier.route is entry.route or earlier.route in entry.mounts
    ):
        return False  # the same route (an app's actions), or a mount that holds entry
    if earlier.methods and entry.methods and not set(earlier.methods) & set(entry.methods):
        return False
    return earlier.pattern.fullmatch(sample) is not None


def _finding(entry: RouteEntry, earlier: RouteEntry, at: Location) -> Finding:
    methods = "/".join(entry.methods) or "any method"
    first = f"{earlier.describe()} ({earlier.path})"
    if _shape(earlier.path) == _shape(entry.path):
        return Finding(
            code=Code.DUPLICATE_ROUTE,
            file=at.file,
            line=at.line,
            message=f"{entry.describe()}: {methods} {entry.path} is "
            f"also {first}, which comes first and wins",
            hint="give one of them another path (or another action name)",
        )
    return Finding(
        code=Code.SHADOWED_ROUTE,
        file=at.file,
        line=at.line,
        message=f"{entry.describe()}: {methods} {entry.path} is never reached: "
        f"{first} comes first and matches it",
        hint="register the more specific route first, or change one of the paths",
    )


def _shape(path: str) -> str:
    """The path with parameter names left out: ``/a/{id}`` and ``/a/{name}`` are one."""
    return _PARAMETER.sub("{}", path)


def action_clashes(plan: PagePlan) -> list[Finding]:
    """Two methods of one page that are actions of the same name: only one is reachable."""
    seen: dict[str, str] = {}
    findings = []
    for attribute, member in inspect.getmembers(plan.cls):
        spec = action_spec(member)
        if spec is None:
            continue
        if spec.name not in seen:
            seen[spec.name] = attribute
            continue
        at = locate(member)
        if at is not None:
            findings.append(
                Finding(
                    code=Code.DUPLICATE_ROUTE,
                    file=at.file,
                    line=at.line,
                    message=f"{plan.cls.__name__}.{attribute} and .{seen[spec.name]} are both "
                    f"the action {spec.name!r}: only one of them can be called",
                    hint="give one of them another name (@action(name=...))",
                )
            )
    return findings
