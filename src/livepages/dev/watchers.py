"""The watchers of ``[tool.livepages.dev]``: a command run when matching files change.

::

    [tool.livepages.dev]
    watch = [
        {glob = "styles/*.css", command = "tailwindcss -i styles/app.css -o static/app.css"},
        {glob = "src/*.ts", command = "esbuild src/app.ts --bundle --outfile=static/app.js"},
    ]

The dev server runs the watchers whose glob matches a change before it reloads
anything, one after the other, in the project folder. What a command prints goes
to the terminal; a command that fails (a non-zero status, or still running after
its ``timeout``) is a :class:`~livepages.dev.overlay.Problem` that open pages show
in the overlay, with the command's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from livepages.cli.project import Watcher

from .overlay import MAX_TEXT, Problem

__all__ = ["matches", "run_watcher", "run_watchers"]


def matches(watcher: Watcher, paths: Iterable[Path], root: Path) -> bool:
    """Whether any of ``paths`` (absolute) under ``root`` matches the watcher's glob."""
    for path in paths:
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            continue
        if fnmatch.fnmatchcase(relative, watcher.glob):
            return True
    return False


async def run_watcher(watcher: Watcher, root: Path) -> Problem | None:
    """Run the watcher's command in ``root``; its problem, or None when it succeeded."""
    print(f"livepages dev: running {watcher.command}", file=sys.stderr, flush=True)
    # The command is the project's own configuration, meant for a shell (pipes, &&).
    process = await asyncio.create_subprocess_shell(
        watcher.command,
        cwd=root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # so that a timeout stops what the shell started too
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), watcher.timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return Problem(
            title=f"watcher {watcher.glob!r} timed out after {watcher.timeout:g} s",
            text=f"$ {watcher.command}\n(stopped)",
        )
    text = output.decode(errors="replace")
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
    if process.returncode == 0:
        return None
    return Problem(
        title=f"watcher {watcher.glob!r} failed with status {process.returncode}",
        text=f"$ {watcher.command}\n{text[-MAX_TEXT:]}",
    )


async def run_watchers(
    watchers: Sequence[Watcher], paths: Iterable[Path], root: Path
) -> Problem | None:
    """Run each watcher that matches ``paths``, in order; the first problem, if any."""
    changed = list(paths)
    first: Problem | None = None
    for watcher in watchers:
        if matches(watcher, changed, root):
            problem = await run_watcher(watcher, root)
            first = first or problem
    return first
