"""``livepages dev``: the development server (``livepages.dev``)."""

from __future__ import annotations

import click

from livepages.cli.options import listen, project_or_exit, server_options, tls_of
from livepages.cli.project import ProjectError

__all__ = ["dev"]


@click.command()
@server_options
def dev(
    app: str | None, host: str | None, port: int | None, tls_cert: str | None, tls_key: str | None
) -> None:
    """Serve APP for development: restart on Python changes, re-render on template
    changes, refresh open pages by themselves, show errors in the page.

    APP is module:attribute (default: app under [tool.livepages] in pyproject.toml).
    """
    from livepages.dev.supervisor import Supervisor  # watchfiles: only for this command

    project = project_or_exit()
    try:
        spec = project.app_spec(app)
    except ProjectError as exc:
        raise click.ClickException(str(exc)) from None
    settings = project.dev
    tls = tls_of(project, (tls_cert, tls_key), (settings.tls_cert, settings.tls_key))
    host = host or settings.host
    sock = listen(host, settings.port if port is None else port)
    scheme = "https" if tls else "http"
    bound = sock.getsockname()[1]
    click.echo(f"livepages dev: serving {spec} at {scheme}://{host}:{bound}", err=True)
    try:
        Supervisor(spec, project.root, sock, watchers=settings.watch, tls=tls).run()
    finally:
        sock.close()
