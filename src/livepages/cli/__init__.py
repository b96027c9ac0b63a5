"""The ``livepages`` command: ``init``, ``dev``, ``run``, ``check``, ``routes``, ``version``.

Installed as a console script with the package (and runnable as ``python -m
livepages``). Each subcommand lives in a module of its own here and registers itself
on :data:`main`; the app and the settings come from ``livepages.cli.project``.
"""

from __future__ import annotations

import click

from livepages.cli.dev import dev
from livepages.cli.run import run
from livepages.cli.version import version

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """livepages: server-driven, real-time web apps in Python on Datastar."""


main.add_command(version)
main.add_command(dev)
main.add_command(run)
