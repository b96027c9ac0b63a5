"""``livepages run``: the production server.

One process serves the app itself. ``--workers N`` starts N processes that share one
listening socket (``livepages.cli.workers``); they must share events, sessions and
secrets, so the app must be on NATS with a secret key that every process knows, and
the command refuses to start otherwise.
"""

from __future__ import annotations

from typing import Any

import click

from livepages.broker.memory import MemoryBroker
from livepages.broker.prefix import PrefixedBroker
from livepages.cli.options import listen, project_or_exit, server_options, tls_of
from livepages.cli.project import ProjectError, load_app
from livepages.server import livepages_apps
from livepages.serving import serve

__all__ = ["run", "unshared"]

_SCALING = (
    "set LIVEPAGES_NATS_URL and LIVEPAGES_SECRET_KEY (the same on every process) and build "
    "the app with App(settings=Settings.from_env()); see docs/scaling.md"
)


@click.command()
@server_options
@click.option("--workers", type=click.IntRange(min=1), help="Processes to serve with (default: 1).")
@click.option("--access-log/--no-access-log", default=None, help="Log every request (default: on).")
def run(
    app: str | None,
    host: str | None,
    port: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    workers: int | None,
    access_log: bool | None,
) -> None:
    """Serve APP in production: uvicorn, or hypercorn with HTTP/2 under TLS.

    APP is module:attribute (default: app under [tool.livepages] in pyproject.toml).
    SIGTERM ends every live stream at once and stops the server; open pages reconnect
    to the next one.
    """
    project = project_or_exit()
    settings = project.run
    try:
        spec = project.app_spec(app)
        target = load_app(spec, project.root)
    except ProjectError as exc:
        raise click.ClickException(str(exc)) from None
    count = workers or settings.workers
    if count > 1:
        missing = unshared(target)
        if missing:
            raise click.ClickException(
                f"--workers {count} needs {' and '.join(missing)}: {_SCALING}"
            )
    tls = tls_of(project, (tls_cert, tls_key), (settings.tls_cert, settings.tls_key))
    log = settings.access_log if access_log is None else access_log
    host = host or settings.host
    sock = listen(host, settings.port if port is None else port)
    scheme = "https" if tls else "http"
    server = "hypercorn, HTTP/2" if tls else "uvicorn"
    where = f"{scheme}://{host}:{sock.getsockname()[1]}"
    processes = f"{count} processes" if count > 1 else "1 process"
    click.echo(f"livepages run: serving {spec} at {where} ({server}, {processes})", err=True)
    if count == 1:
        serve(target, sock, tls=tls, access_log=log)
        return
    from livepages.cli.workers import Workers

    code = Workers(spec, project.root, sock, count, tls=tls, access_log=log).run()
    raise SystemExit(code)


def unshared(app: Any) -> list[str]:
    """What several processes of ``app`` would not share: its events (a broker in this
    process) or its secret (none set); an empty list when they share both."""
    missing: list[str] = []
    for each in livepages_apps(app):
        broker = each.broker
        if isinstance(broker, PrefixedBroker):
            broker = broker.broker
        if isinstance(broker, MemoryBroker) and "a NATS broker" not in missing:
            missing.append("a NATS broker")
        if each.settings.secret_key is None and "a shared secret key" not in missing:
            missing.append("a shared secret key")
    return missing
