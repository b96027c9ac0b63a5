"""Where an app's folders are: next to the module that builds the ``App``.

``App(templates="templates", static="static")`` means the folders beside the
app's own source file, wherever the server was started from (``uvicorn
app:app`` in the project folder, ``livepages run`` elsewhere, a test runner at
the repository root). The working directory is tried second, for scripts that
expect it; a folder in neither place is an error when the ``App`` is built,
naming both paths, rather than a 500 on the first request.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["PRIVATE_FOLDER", "caller_file", "caller_folder", "private_folder", "resolve_folder"]

#: The folder livepages keeps its own files in (a development secret, process locks).
PRIVATE_FOLDER = ".livepages"


def caller_file(depth: int = 2) -> Path | None:
    """The source file ``depth`` frames up (the module that made the App), if it has one."""
    frame = sys._getframe(depth)
    filename = frame.f_globals.get("__file__")
    return Path(filename).resolve() if isinstance(filename, str) else None


def caller_folder(depth: int = 2) -> Path | None:
    """The folder of the source file ``depth`` frames up (the module that made the App)."""
    file = caller_file(depth + 1)
    return file.parent if file is not None else None


def private_folder(base: Path) -> Path:
    """``base/.livepages``, created with a ``.gitignore`` of ``*`` so nothing in it is
    ever committed."""
    folder = base / PRIVATE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return folder


def resolve_folder(folder: str | Path, base: Path | None, what: str) -> Path:
    """``folder`` as an existing directory: absolute, beside ``base``, or in the cwd."""
    path = Path(folder)
    candidates = [path] if path.is_absolute() else [c / path for c in (base, Path.cwd()) if c]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
    raise FileNotFoundError(f"App({what}={str(folder)!r}): no folder at {tried}")
