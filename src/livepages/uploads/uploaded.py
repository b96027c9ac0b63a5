"""``Uploaded``: a finished upload, as an action receives it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Uploaded"]


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A file the browser finished uploading, still in the app's upload folder.

    An action that keeps it calls :meth:`save` (which moves it out, so it no longer
    counts against the tab's ``max_files`` and is never swept); anything else is
    deleted ``upload_ttl`` seconds after its last byte arrived.
    """

    #: The upload id (what the page's signal held).
    id: str
    #: The file's name as the browser gave it, without folders or control characters.
    name: str
    #: Its content type as the browser declared it; checked against the file's first
    #: bytes for the types ``livepages.uploads.content`` recognises.
    content_type: str
    #: Its size in bytes.
    size: int
    #: Where its bytes are now.
    path: Path
    #: Its record in the upload folder (removed by ``save`` and ``discard``).
    record: Path

    def read_bytes(self) -> bytes:
        """The whole file (mind its size: up to ``max_upload_size``)."""
        return self.path.read_bytes()

    def save(self, destination: str | os.PathLike[str]) -> Path:
        """Move the file to ``destination`` (a file path) and forget the upload."""
        target = Path(destination)
        shutil.move(self.path, target)
        self.record.unlink(missing_ok=True)
        return target

    def discard(self) -> None:
        """Delete the file and forget the upload."""
        self.path.unlink(missing_ok=True)
        self.record.unlink(missing_ok=True)
