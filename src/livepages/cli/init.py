"""``livepages init [DIR]``: a new project that runs, with a test that passes.

The files come from ``livepages/cli/skeleton/`` (package data): each ``.tmpl`` is rendered
with Jinja2 under delimiters that cannot clash with the Jinja2 templates and Datastar
expressions it contains: ``[[ name ]]``, ``[% if sessions %]``, ``[# comment #]``.
``package/`` becomes the project's package and ``gitignore`` its ``.gitignore``.

livepages is not on PyPI, so the new project depends on livepages where the running one
came from: the checkout or archive it was installed from (PEP 610's ``direct_url.json``),
written as ``livepages @ file:///...``. ``--livepages-source`` names another source.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click
import jinja2

__all__ = ["Requirement", "init", "package_name", "requirement"]

#: A distribution name as PEP 508 allows it.
NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
#: Package names a project cannot take: they would hide a module it imports.
TAKEN = frozenset({"livepages", "tests", "test", "conftest"}) | sys.stdlib_module_names

# Generated files are source code, not HTML for a browser: nothing to escape.
_SKELETON = jinja2.Environment(
    block_start_string="[%",
    block_end_string="%]",
    variable_start_string="[[",
    variable_end_string="]]",
    comment_start_string="[#",
    comment_end_string="#]",
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701
)


@dataclass(frozen=True, slots=True)
class Requirement:
    """How the new project depends on livepages, and the words that explain it."""

    #: The PEP 508 requirement written in pyproject.toml.
    text: str
    #: One line for the comment above it.
    note: str
    #: A paragraph for the project's README.
    readme: str


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The project's name (default: the folder's name).")
@click.option("--sessions", is_flag=True, help="Turn sessions on (App(sessions=True)).")
@click.option("--nats", is_flag=True, help="Depend on livepages[nats] to run on many processes.")
@click.option(
    "--livepages-source",
    metavar="PATH|URL",
    help="Where the project installs livepages from: a checkout or an archive "
    "(default: where this livepages was installed from).",
)
def init(
    directory: Path, name: str | None, sessions: bool, nats: bool, livepages_source: str | None
) -> None:
    """Create a livepages project in DIRECTORY (default: the current folder).

    It writes pyproject.toml, an app with a live page and an action, a layout template,
    a stylesheet, a test, a README, a .gitignore and an AGENTS.md. It asks nothing, and
    refuses to overwrite any file.
    """
    folder = directory.resolve()
    name = name or folder.name
    if not NAME.match(name):
        raise click.UsageError(f"{name!r} is not a project name: use letters, digits, '-', '_'")
    package = package_name(name)
    wanted = requirement(livepages_source, nats=nats)
    values = {
        "name": name,
        "title": _title(name),
        "package": package,
        "sessions": sessions,
        "nats": nats,
        "requirement": wanted.text,
        "requirement_note": wanted.note,
        "requirement_readme": wanted.readme,
    }
    files = {
        folder / _target(path, package): _render(source, values) for path, source in _skeleton()
    }
    existing = sorted(str(path) for path in files if path.exists())
    if existing:
        raise click.ClickException(
            "refusing to overwrite: " + ", ".join(existing) + " (nothing was written)"
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"created {path.relative_to(folder)}")
    click.echo(f"\nlivepages: {wanted.text}")
    where = "" if folder == Path.cwd().resolve() else f"cd {directory}\n  "
    click.echo(
        f"\nNext:\n  {where}python3 -m venv .venv && . .venv/bin/activate\n"
        "  pip install -e '.[dev]'\n  livepages dev     # http://127.0.0.1:8000\n  pytest"
    )


def package_name(name: str) -> str:
    """The Python package for a project name: ``my-board`` is ``my_board``."""
    package = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    if not package or package[0].isdigit():
        package = "app_" + package
    if keyword.iskeyword(package) or package in TAKEN:
        raise click.UsageError(
            f"the project's package would be {package!r}, which hides a module of that name: "
            "choose another --name"
        )
    return package


def requirement(source: str | None, *, nats: bool = False) -> Requirement:
    """The livepages requirement for a new project: from ``source`` (a path or URL), else
    from where the running livepages was installed, else from the package index."""
    extra = "[nats]" if nats else ""
    if source is not None:
        url = source if "://" in source else Path(source).resolve().as_uri()
        return Requirement(
            f"livepages{extra} @ {url}",
            "livepages from --livepages-source",
            f"`pyproject.toml` installs livepages from `{url}` (given to `livepages init "
            "--livepages-source`). Change the requirement there to install it from elsewhere.",
        )
    origin = _installed_from()
    if origin is not None:
        return Requirement(
            f"livepages{extra} @ {origin}",
            "livepages is not on PyPI: this is where `livepages init` found it installed from",
            f"livepages is not on PyPI yet, so `pyproject.toml` installs it from `{origin}`: "
            "where the livepages that ran `livepages init` was installed from, on that "
            "machine. Elsewhere, point the requirement at a livepages checkout or archive "
            "(`livepages @ file:///path/to/livepages`).",
        )
    version = metadata.version("livepages")
    return Requirement(
        f"livepages{extra}>={version}",
        "livepages from the package index",
        f"`pyproject.toml` installs livepages {version} or newer from the package index.",
    )


def _installed_from() -> str | None:
    """The URL livepages was installed from (PEP 610), as a PEP 508 direct reference."""
    try:
        text = metadata.distribution("livepages").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None  # installed from an index
    try:
        origin = json.loads(text)
        url = str(origin["url"])
    except (ValueError, KeyError, TypeError):
        return None
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict) and "vcs" in vcs:
        commit = vcs.get("commit_id")
        return f"{vcs['vcs']}+{url}" + (f"@{commit}" if commit else "")
    return url


def _skeleton() -> list[tuple[str, str]]:
    """(path below skeleton/, text) of every template file, in a stable order."""
    found: list[tuple[str, str]] = []

    def walk(folder: Traversable, prefix: str) -> None:
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif item.name.endswith(".tmpl"):
                found.append((prefix + item.name, item.read_text(encoding="utf-8")))

    walk(resources.files("livepages.cli") / "skeleton", "")
    return found


def _target(path: str, package: str) -> Path:
    path = path.removesuffix(".tmpl")
    if path.startswith("package/"):
        path = package + path.removeprefix("package")
    if path == "gitignore":
        path = ".gitignore"
    return Path(path)


def _render(source: str, values: dict[str, object]) -> str:
    return _SKELETON.from_string(source).render(values)


def _title(name: str) -> str:
    words = re.sub(r"[-_.]+", " ", name).strip()
    return words[:1].upper() + words[1:]
