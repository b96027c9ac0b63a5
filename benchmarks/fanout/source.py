"""Another version of livepages to measure beside this one: a git revision or a folder.

``python -m benchmarks.fanout --before 149a926`` exports that revision's ``src``
folder with ``git archive`` (no work tree, nothing left in the repository) and
measures each livepages target twice in one run: with that source, then with
this checkout's. The benchmark's own app code is this checkout's for both.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from benchmarks.fanout.process import ROOT

__all__ = ["export_source", "label_of"]


def export_source(ref: str, into: Path) -> Path:
    """The folder holding the ``livepages`` package of ``ref``.

    ``ref`` is a folder (a checkout, or its ``src``) or a git revision of this
    repository, exported into ``into``. Raises ``ValueError`` saying what is wrong.
    """
    folder = Path(ref)
    if folder.is_dir():
        src = folder / "src" if (folder / "src" / "livepages").is_dir() else folder
        if not (src / "livepages").is_dir():
            raise ValueError(f"{ref}: no livepages package in it or in its src folder")
        return src.resolve()
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "src"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip()
        raise ValueError(f"cannot export {ref!r}: {detail or exc}") from exc
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def label_of(ref: str) -> str:
    """A short name for ``ref`` in the table: a folder's name, or the revision."""
    folder = Path(ref)
    return folder.resolve().name if folder.is_dir() else ref
