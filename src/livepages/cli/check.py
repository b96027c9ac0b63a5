"""``livepages check [APP]``: validate the app's pages, routes and templates, for CI.

The analysis is ``livepages.checks``; this is the command around it: it names the app
(``[tool.livepages] app`` unless given), prints each finding and sets the exit status.
"""

from __future__ import annotations

import click

from livepages.checks import check as check_app
from livepages.cli.project import ProjectError, find_project, load_app

__all__ = ["check"]


@click.command()
@click.argument("app", required=False)
def check(app: str | None) -> None:
    """Check APP's pages, routes and templates without serving it.

    APP is module:attribute (or module:factory()); by default the app set under
    [tool.livepages] in pyproject.toml.

    Each finding is printed as file:line: code: message, with a hint. A comment on the
    line silences one finding: "# livepages: ignore[code]" in Python (also on a decorator
    line above), "{# livepages: ignore[code] #}" in a template.

    Exit status: 0 when nothing is found, 1 when something is, 2 when there is no app to
    check.
    """
    try:
        project = find_project()
        spec = project.app_spec(app)
        report = check_app(spec, project.root, load_app)
    except (ProjectError, ImportError) as error:
        raise click.UsageError(str(error)) from error
    for finding in report.findings:
        click.echo(finding.describe())
    if report.loaded and report.apps == 0:
        click.echo(f"{spec} holds no livepages app: only its routes were checked", err=True)
    looked_at = (
        f"{report.apps} app(s), {report.pages} page(s), {report.templates} template(s), "
        f"{report.routes} route(s)"
    )
    if report.findings:
        click.echo(f"{len(report.findings)} problem(s) found in {looked_at}")
        raise SystemExit(1)
    click.echo(f"no problems found in {looked_at}")
