"""``livepages routes [APP]``: every route of the app, in the order its router tries them."""

from __future__ import annotations

import click

from livepages.checks.table import RouteEntry, RouteKind, apps_in, route_table
from livepages.cli.project import ProjectError, find_project, load_app

__all__ = ["routes"]

HEADINGS = ("METHOD", "PATH", "KIND", "TARGET", "NOTE")


@click.command()
@click.argument("app", required=False)
def routes(app: str | None) -> None:
    """List every route of APP: pages, live streams, actions, static files, mounts (with
    the routes of mounted apps) and plain routes, in the order the router tries them.

    APP is module:attribute (or module:factory()); by default the app set under
    [tool.livepages] in pyproject.toml.
    """
    try:
        project = find_project()
        target = load_app(project.app_spec(app), project.root)
    except (ProjectError, ImportError) as error:
        raise click.UsageError(str(error)) from error
    rows = [HEADINGS, *(_row(entry) for entry in route_table(target))]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADINGS))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for prefix, livepages in apps_in(target):
        if livepages.settings.datastar_file is None:
            where = f" (the app at {prefix})" if prefix else ""
            click.echo(f"\nDatastar{where} loads from {livepages.settings.datastar_url}")


def _row(entry: RouteEntry) -> tuple[str, str, str, str, str]:
    methods = "/".join(entry.methods) or ("*" if entry.kind is not RouteKind.HOST else "")
    return methods, entry.path, entry.kind.value, entry.target, entry.note
