"""``livepages version``: livepages, Python and the key dependencies, for bug reports."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import click

__all__ = ["DISTRIBUTIONS", "version", "versions"]

#: What a bug report needs besides livepages and Python, in this order.
DISTRIBUTIONS = (
    "starlette",
    "msgspec",
    "jinja2",
    "uvicorn",
    "granian",
    "hypercorn",
    "nats-py",
    "click",
)


def versions() -> list[tuple[str, str]]:
    """(name, version) for livepages, Python and each of :data:`DISTRIBUTIONS`."""
    found = [
        ("livepages", _installed("livepages")),
        ("python", f"{platform.python_version()} ({sys.implementation.name})"),
    ]
    return found + [(name, _installed(name)) for name in DISTRIBUTIONS]


@click.command()
def version() -> None:
    """Print the versions of livepages, Python and the key dependencies."""
    pairs = versions()
    width = max(len(name) for name, _ in pairs)
    for name, number in pairs:
        click.echo(f"{name:<{width}}  {number}")


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
