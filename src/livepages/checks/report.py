"""A check of a project's app, from import to the last template: :func:`check`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livepages.app import App
from livepages.checks.conflicts import action_clashes, route_conflicts
from livepages.checks.findings import Finding, read_text, unsuppressed
from livepages.checks.loading import Loader, load
from livepages.checks.sources import Location, TemplateUse, locate, template_uses
from livepages.checks.table import RouteEntry, apps_in, route_table
from livepages.checks.templates import TemplateChecker

__all__ = ["Report", "check"]


@dataclass
class Report:
    """What a check found (after suppressions), and how much it looked at."""

    findings: list[Finding] = field(default_factory=list)
    #: Whether the app imported at all.
    loaded: bool = False
    apps: int = 0
    pages: int = 0
    templates: int = 0
    routes: int = 0


def check(spec: str, root: Path, loader: Loader) -> Report:
    """Import the app named ``spec`` (``module:attribute``) from ``root`` with ``loader``
    (``livepages.cli.project.load_app``) and check it."""
    loaded = load(spec, root, loader)
    report = Report(loaded=loaded.app is not None)
    findings = list(loaded.findings)
    sources: dict[str, str] = {}
    if loaded.app is not None:
        fallback = loaded.home or Location(str(root), 1)
        table = route_table(loaded.app)
        report.routes = len(table)
        findings += route_conflicts(table, lambda entry: _place(entry, fallback))
        for _, app in apps_in(loaded.app):
            report.apps += 1
            report.pages += len(app.pages)
            for plan in app.pages:
                findings += action_clashes(plan)
            checker = TemplateChecker(app, _uses(app), route_table(app))
            findings += checker.run()
            report.templates += len(checker.parsed)
            sources |= checker.sources()
    report.findings = unsuppressed(findings, lambda file: sources.get(file) or read_text(file))
    return report


def _place(entry: RouteEntry, fallback: Location) -> Location:
    """Where to report a route: its page class or function, else where the app is."""
    return (locate(entry.owner) if entry.owner is not None else None) or fallback


def _uses(app: App) -> list[TemplateUse]:
    """The templates that the files of the app's pages and app-wide actions render by name."""
    owners: list[Any] = [plan.cls for plan in app.pages]
    owners += [entry.plan.func for entry in app.dispatcher.actions.values()]
    files = {place.file for place in map(locate, owners) if place is not None}
    return [use for file in sorted(files) for use in template_uses(file)]
