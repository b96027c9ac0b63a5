"""The targets the benchmark can measure: how to start each one, and whether it can run here."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.fanout.page import PAGE_ENV, PageName

__all__ = [
    "DEFAULT_LIVEPAGES_APP",
    "PERSONAL_LIVEPAGES_APP",
    "PERSONAL_STARLETTE_APP",
    "PER_VIEWER_LIVEPAGES_APP",
    "STARLETTE_APP",
    "TARGET_NAMES",
    "Target",
    "asgi_command",
    "build_lineup",
    "find_stario_python",
    "with_source",
]

DEFAULT_LIVEPAGES_APP = "benchmarks.fanout.targets.livepages_app:create_app"
STARLETTE_APP = "benchmarks.fanout.targets.starlette_app:create_app"
#: The same apps rendering each stream's page for its viewer (``page.viewer_name``).
PERSONAL_LIVEPAGES_APP = "benchmarks.fanout.targets.livepages_app:create_personal_app"
PERSONAL_STARLETTE_APP = "benchmarks.fanout.targets.starlette_app:create_personal_app"
#: A prototype: the page rendered once with a hole for the name, filled per stream.
PER_VIEWER_LIVEPAGES_APP = "benchmarks.fanout.targets.livepages_app:create_per_viewer_app"

TARGET_NAMES = (
    "raw",
    "starlette",
    "starlette-personal",
    "starlette-granian",
    "livepages",
    "livepages-personal",
    "livepages-per-viewer",
    "livepages-granian",
    "stario",
)

# The number of requests granian may serve at once, above the number of streams.
_GRANIAN_HEADROOM = 256


@dataclass(frozen=True)
class Target:
    """A server to measure.

    ``command(port, clients)`` is the argv that starts it; ``unavailable`` is the
    reason it cannot run here, or None when it can (as far as can be told
    without starting it). ``pythonpath`` goes first on the server's
    ``PYTHONPATH``: a livepages target built by ``with_source`` imports
    livepages from there instead of this checkout. ``env`` is added to the
    server's environment. ``processes`` servers are started, each on its own
    port, and the streams are spread over them: more than one only makes sense
    for an app whose processes share their changes (over NATS).
    """

    name: str
    description: str
    command: Callable[[int, int], list[str]]
    unavailable: str | None = None
    pythonpath: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    processes: int = 1


def with_source(target: Target, src: Path, label: str) -> Target:
    """``target`` serving the livepages package found in ``src`` (a ``src`` folder).

    The benchmark's own app stays this checkout's; only the library changes, so
    one run compares two versions of livepages side by side.
    """
    return replace(
        target,
        name=f"{target.name}@{label}",
        description=f"{target.description}, livepages from {label}",
        pythonpath=(str(src),),
    )


def _raw(port: int, clients: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.fanout.targets.raw", "--port", str(port)]


def asgi_command(app: str, server: str) -> Callable[[int, int], list[str]]:
    """How to serve the ASGI app factory ``app`` (``module:factory``) under ``server``."""

    def command(port: int, clients: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "benchmarks.fanout.serve",
            "--server",
            server,
            "--app",
            app,
            "--port",
            str(port),
            "--backpressure",
            str(clients + _GRANIAN_HEADROOM),
        ]

    return command


def _no_command(port: int, clients: int) -> list[str]:
    raise RuntimeError("this target cannot be started")


def _granian_missing() -> str | None:
    if importlib.util.find_spec("granian") is None:
        return "granian is not installed"
    return None


def find_stario_python(explicit: str | None) -> tuple[str | None, str]:
    """A Python >= 3.12 interpreter that can import stario, or None and what was tried."""
    candidates = [explicit] if explicit else ["python3.14", "python3.13", "python3.12"]
    tried: list[str] = []
    for candidate in candidates:
        path = shutil.which(candidate) if candidate else None
        if path is None:
            tried.append(f"{candidate}: not found")
            continue
        check = "import sys, stario; raise SystemExit(0 if sys.version_info >= (3, 12) else 1)"
        try:
            result = subprocess.run(
                [path, "-c", check], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{path}: {exc}")
            continue
        if result.returncode == 0:
            return path, ""
        tried.append(f"{path}: no stario or Python < 3.12")
    return None, "; ".join(tried)


def _stario(explicit_python: str | None) -> Target:
    python, tried = find_stario_python(explicit_python)
    if python is None:
        reason = f"no Python >= 3.12 with stario found ({tried})"
    else:
        # Stario is not ASGI and its API moves between majors: an app for it is
        # to be written against the installed version (see README).
        reason = f"stario is importable by {python}, but no stario app is written yet"
    return Target("stario", "Stario (own server) + Relay", _no_command, reason)


def build_lineup(
    names: Sequence[str],
    livepages_app: str,
    stario_python: str | None,
    page: PageName = PageName.BOARD,
) -> list[Target]:
    """The targets called ``names``, in that order (see :data:`TARGET_NAMES`), serving ``page``."""
    granian = _granian_missing()
    makers: dict[str, Callable[[], Target]] = {
        "raw": lambda: Target("raw", "hand-written asyncio on uvloop, bytes encoded once", _raw),
        "starlette": lambda: Target(
            "starlette",
            "Starlette + datastar-py, a queue per client, uvicorn",
            asgi_command(STARLETTE_APP, "uvicorn"),
        ),
        "starlette-personal": lambda: Target(
            "starlette-personal",
            "Starlette + datastar-py, a queue and a render per client, uvicorn",
            asgi_command(PERSONAL_STARLETTE_APP, "uvicorn"),
        ),
        "starlette-granian": lambda: Target(
            "starlette-granian",
            "Starlette + datastar-py, a queue per client, granian",
            asgi_command(STARLETTE_APP, "granian"),
            granian,
        ),
        "livepages": lambda: Target(
            "livepages", f"{livepages_app} under uvicorn", asgi_command(livepages_app, "uvicorn")
        ),
        "livepages-personal": lambda: Target(
            "livepages-personal",
            "the page greeting each viewer (its render takes the Tab), uvicorn",
            asgi_command(PERSONAL_LIVEPAGES_APP, "uvicorn"),
        ),
        "livepages-per-viewer": lambda: Target(
            "livepages-per-viewer",
            "the same page with personal_holes=False: a render per viewer, uvicorn",
            asgi_command(PER_VIEWER_LIVEPAGES_APP, "uvicorn"),
        ),
        "livepages-granian": lambda: Target(
            "livepages-granian",
            f"{livepages_app} under granian",
            asgi_command(livepages_app, "granian"),
            granian,
        ),
        "stario": lambda: _stario(stario_python),
    }
    unknown = [name for name in names if name not in makers]
    if unknown:
        raise ValueError(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(makers)}")
    page_env = ((PAGE_ENV, page.value),)
    targets = [makers[name]() for name in names]
    return [replace(target, env=target.env + page_env) for target in targets]
