"""Builds: which version of the app's code rendered a page.

Every page sends the id of the build that rendered it with its live stream
(``X-LP-Build``). A stream that reaches a process of another build (a deploy, or
a restart of ``livepages dev``) tells its page to reload itself, once per build,
keeping the signals the page marks as kept (``Page.kept_signals``): the new code
may render a body the old document's head and signals do not fit.

The id is ``Settings.build_id`` when set (a release tag, a commit hash), else a
content hash of the app's code and templates: the Python files of the package
that made the ``App`` (or of its one module) and the files of its templates and
static folders. Every process of one deploy computes the same id; any change to
those files gives a new one. Under ``livepages dev`` the id is the process's boot
id, so every restart reloads the open pages.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator
from html import escape
from pathlib import Path

from livepages.datastar import events
from livepages.expressions import js_string

__all__ = ["Build", "build_id", "check_kept", "code_folder", "reload_event", "restore_expression"]

#: Where a page keeps its kept signals across the reload (``sessionStorage``).
KEPT_KEY = "livepages.kept"
#: The build a tab last reloaded for: it reloads once per build, never in a loop
#: (a rolling deploy may answer its next stream from an old process again).
RELOADED_KEY = "livepages.build"
_SKIPPED = {"__pycache__", "node_modules"}
_HASH_BYTES = 8


def code_folder(module: Path | None) -> Path | None:
    """The folder of the top package that holds ``module``, or None for a lone module."""
    if module is None:
        return None
    folder: Path | None = None
    parent = module.parent
    while (parent / "__init__.py").is_file():
        folder, parent = parent, parent.parent
    return folder


def build_id(module: Path | None, folders: Iterable[Path]) -> str:
    """A content hash of the app's code (``module``'s package, or ``module`` alone) and
    of every file under ``folders`` (templates, static files): 16 hex digits."""
    digest = hashlib.sha256()
    package = code_folder(module)
    roots: list[tuple[Path, str]] = []
    if package is not None:
        roots.append((package, "*.py"))
    elif module is not None and module.is_file():
        digest.update(b"module\0" + module.read_bytes())
    roots.extend((folder, "*") for folder in folders if folder.is_dir())
    for index, (root, pattern) in enumerate(roots):
        for path in _files(root, pattern):
            name = path.relative_to(root).as_posix()
            digest.update(f"{index}\0{name}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[: 2 * _HASH_BYTES]


class Build:
    """The running build: its id, a fixed one or the content hash, computed on first use."""

    def __init__(
        self, fixed: str | None = None, module: Path | None = None, folders: Iterable[Path] = ()
    ) -> None:
        self._id = fixed or None
        self._module = module
        self._folders = tuple(folders)

    @property
    def id(self) -> str:
        """The build id (hashing the app's files the first time, with no ``fixed`` id)."""
        if self._id is None:
            self._id = _hashed(self._module, self._folders)
        return self._id


@functools.cache
def _hashed(module: Path | None, folders: tuple[Path, ...]) -> str:
    # Once per process and app source: the files of a running deploy do not change
    # (``livepages dev`` restarts, with its boot id as the build id).
    return build_id(module, folders)


def _files(root: Path, pattern: str) -> Iterator[Path]:
    """The files under ``root`` matching ``pattern``, sorted, hidden ones left out."""
    for path in sorted(root.rglob(pattern)):
        parts = path.relative_to(root).parts
        if path.is_file() and not any(p.startswith(".") or p in _SKIPPED for p in parts):
            yield path


#: A signal path a page may keep: names separated by dots (``form.draft``).
_SIGNAL_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def check_kept(signals: tuple[str, ...]) -> tuple[str, ...]:
    """``signals`` if each is a signal path (``draft``, ``form.text``); ValueError if not."""
    for name in signals:
        if not _SIGNAL_PATH.fullmatch(name):
            raise ValueError(f"kept_signals: {name!r} is not a signal path like 'form.text'")
    return signals


def _keep(signals: tuple[str, ...]) -> str:
    """A JS object literal of the kept signals' values: ``{'draft': $draft}``."""
    return "{" + ", ".join(f"{js_string(name)}: ${name}" for name in signals) + "}"


def reload_event(build: str, kept: tuple[str, ...] = ()) -> bytes:
    """The patch that reloads a page rendered by another build, once per ``build``.

    A Datastar expression (not a plain script) does it, so that it can read the
    kept signals and save them for the reloaded page to restore.
    """
    save = ""
    if kept:
        values = f"{{path: location.pathname, values: {_keep(kept)}}}"
        save = f"sessionStorage.setItem({js_string(KEPT_KEY)}, JSON.stringify({values}));"
    expression = (
        f"if (sessionStorage.getItem({js_string(RELOADED_KEY)}) !== {js_string(build)}) {{"
        f" sessionStorage.setItem({js_string(RELOADED_KEY)}, {js_string(build)}); {save}"
        " location.reload() }"
    )
    element = f'<div id="lp-reload" hidden data-init="{escape(expression)}"></div>'
    return events.patch_elements(element, selector="body", mode="append")


def restore_expression(kept: tuple[str, ...]) -> str:
    """The ``data-init`` expression that restores the kept signals after a reload."""
    assigns = " ".join(
        f"if ({js_string(name)} in k.values) ${name} = k.values[{js_string(name)}];"
        for name in kept
    )
    return (
        f"const k = JSON.parse(sessionStorage.getItem({js_string(KEPT_KEY)}) || 'null');"
        f" sessionStorage.removeItem({js_string(KEPT_KEY)});"
        f" if (k && k.path === location.pathname) {{ {assigns} }}"
    )
