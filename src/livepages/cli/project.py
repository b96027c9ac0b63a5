"""The project a command runs in: ``[tool.livepages]`` in ``pyproject.toml``, and its app.

::

    [tool.livepages]
    app = "myapp.main:app"        # module:attribute, or module:factory()

    [tool.livepages.dev]
    port = 8000
    watch = [{glob = "styles/*.css", command = "tailwindcss -i styles/app.css -o static/app.css"}]

    [tool.livepages.run]
    workers = 2

Every field has a default, so a project without the table works when the app is named
on the command line. Options on the command line win over the table.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "DevSettings",
    "Project",
    "ProjectError",
    "RunSettings",
    "Watcher",
    "find_project",
    "load_app",
]

PYPROJECT = "pyproject.toml"


class ProjectError(Exception):
    """The project's configuration or its app cannot be used; the message says why."""


class Watcher(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A command the dev server runs when a file matching ``glob`` changes, before it reloads.

    ``glob`` is matched against the path relative to the project folder, with ``/``
    between folders; ``*`` matches across folders too (``*.css`` is any CSS file). The
    command runs in a shell in the project folder and is stopped after ``timeout`` seconds.
    """

    glob: str
    command: str
    timeout: float = 60.0


class DevSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[tool.livepages.dev]``: the development server."""

    host: str = "127.0.0.1"
    port: int = 8000
    watch: tuple[Watcher, ...] = ()
    #: A certificate and its key (PEM files) serve HTTPS with HTTP/2.
    tls_cert: str | None = None
    tls_key: str | None = None


class RunSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[tool.livepages.run]``: the production server."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    access_log: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    app: str | None = None
    dev: DevSettings = DevSettings()
    run: RunSettings = RunSettings()


class Project(msgspec.Struct, frozen=True, kw_only=True):
    """A project: its folder (where ``pyproject.toml`` is, else the current one) and settings."""

    root: Path
    app: str | None = None
    dev: DevSettings = DevSettings()
    run: RunSettings = RunSettings()

    def app_spec(self, given: str | None) -> str:
        """The app to serve: ``given`` on the command line, else the table's ``app``."""
        spec = given or self.app
        if not spec:
            raise ProjectError(
                "which app? Name it (livepages dev myapp.main:app) or set "
                f'app = "module:attribute" under [tool.livepages] in {PYPROJECT}'
            )
        return spec


def find_project(start: Path | None = None) -> Project:
    """The project around ``start`` (default: the current folder): the nearest folder,
    going up, with a ``pyproject.toml``, else ``start`` itself with default settings."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        path = folder / PYPROJECT
        if path.is_file():
            return _read(path)
    return Project(root=start)


def _read(path: Path) -> Project:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ProjectError(f"{path}: {error}") from error
    table = data.get("tool", {}).get("livepages", {})
    try:
        settings = msgspec.convert(table, _Table)
    except msgspec.ValidationError as error:
        raise ProjectError(f"{path}, [tool.livepages]: {error}") from error
    return Project(root=path.parent, app=settings.app, dev=settings.dev, run=settings.run)


def load_app(spec: str, root: Path) -> Any:
    """Import the ASGI app named ``module:attribute`` with ``root`` on ``sys.path``.

    ``module:factory()`` (or an attribute that is a plain function) calls it with no
    arguments and serves what it returns. Import errors propagate as they are, so the
    caller can show the file and line.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ProjectError(f"{spec!r} is not module:attribute (say, myapp.main:app)")
    call = attribute.endswith("()")
    attribute = attribute.removesuffix("()")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(module_name)
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ProjectError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if call or inspect.isfunction(target):
        target = target()
    if not callable(target):
        raise ProjectError(f"{spec} is {type(target).__name__}, not an ASGI app")
    return target
