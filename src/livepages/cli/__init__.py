"""The ``livepages`` command: ``init``, ``dev``, ``run``, ``check``, ``routes``, ``version``.

Installed as a console script with the package (and runnable as ``python -m
livepages``). Each subcommand lives in a module of its own here and registers itself
on :data:`main`; the app and the settings come from ``livepages.cli.project``.
"""

from __future__ import annotations

import click

from livepages.cli.check import check
from livepages.cli.dev import dev
from livepages.cli.init import init
from livepages.cli.routes import routes
from livepages.cli.run import run
from livepages.cli.version import version

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """livepages: server-driven, real-time web apps in Python on Datastar."""


main.add_command(init)
main.add_command(check)
main.add_command(routes)
main.add_command(version)
main.add_command(dev)
main.add_command(run)
