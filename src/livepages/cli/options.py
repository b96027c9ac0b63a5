"""Options that ``livepages dev`` and ``livepages run`` share: where to listen, and TLS."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from livepages.cli.project import Project, ProjectError, find_project
from livepages.serving import TLS, listening_socket

__all__ = ["listen", "project_or_exit", "server_options", "tls_of"]

F = TypeVar("F", bound=Callable[..., Any])


def server_options(func: F) -> F:
    """``APP``, ``--host``, ``--port``, ``--tls-cert`` and ``--tls-key``."""
    for option in reversed(
        [
            click.argument("app", required=False),
            click.option(
                "--host", help="Address to listen on (default: [tool.livepages], else 127.0.0.1)."
            ),
            click.option(
                "--port", type=int, help="Port to listen on (default: [tool.livepages], else 8000)."
            ),
            click.option(
                "--tls-cert",
                type=click.Path(dir_okay=False),
                help="Certificate (PEM): serve HTTPS with HTTP/2. Needs --tls-key.",
            ),
            click.option(
                "--tls-key", type=click.Path(dir_okay=False), help="Its private key (PEM)."
            ),
        ]
    ):
        func = option(func)
    return func


def project_or_exit() -> Project:
    """The project around the current folder, or a clean exit saying what is wrong."""
    try:
        return find_project()
    except ProjectError as exc:
        raise click.ClickException(str(exc)) from None


def tls_of(
    project: Project, given: tuple[str | None, str | None], table: tuple[str | None, str | None]
) -> TLS | None:
    """The certificate and key: the command line's (relative to the current folder),
    else the table's (relative to the project folder); both or neither."""
    cert, key = given
    folder = Path.cwd()
    if cert is None and key is None:
        cert, key = table
        folder = project.root
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise click.UsageError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
    tls = TLS(str(folder / cert), str(folder / key))
    try:
        tls.check()
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    return tls


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, or a clean exit saying why not."""
    try:
        return listening_socket(host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
