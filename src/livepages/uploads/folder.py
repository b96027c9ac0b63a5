"""The upload folder: where uploads grow, chunk by chunk, until an action takes them.

Layout: ``<folder>/<tab id>/<upload id>.json`` (what the browser declared) and
``<upload id>.data`` (the bytes received so far). The bytes received are the
file's size, so the offset to resume from survives a restart of the process,
and every process that sees the folder (one machine, or a shared mount) serves
the same uploads. Files are named only by verified ids (a tab id as issued, an
upload id as issued), so no name from a request reaches a path.

Writers lock the data file (``flock``), so two requests appending to one upload at
once (a retry while the dropped request is still being read) cannot interleave:
the second is a 409 and asks again where the upload stands.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec

from livepages.errors import (
    BadRequest,
    Conflict,
    HTTPError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from livepages.uploads.content import SIGNATURE_BYTES, SNIFFED, accepts, sniff
from livepages.uploads.limits import UploadLimits
from livepages.uploads.uploaded import Uploaded
from livepages.uploads.wire import OFFSET_HEADER, NewUpload, new_upload_id

__all__ = ["UnsupportedType", "UploadFolder"]

log = logging.getLogger("livepages.uploads")


class UnsupportedType(HTTPError):
    """415: the app does not accept this type of file, or its bytes are not that type."""

    status = 415


class _Record(msgspec.Struct, frozen=True):
    name: str
    size: int
    type: str


class UploadFolder:
    """The uploads of one app, kept in ``path`` (created with mode 0700)."""

    def __init__(self, path: Path, limits: UploadLimits, *, private: bool = False) -> None:
        self.path = path
        self.limits = limits
        #: Refuse a folder that another user owns or may enter (the default folder, in
        #: the shared temporary folder, where anyone could have made it first).
        self.private = private

    # -- starting -------------------------------------------------------------------

    def create(self, owner: str, new: NewUpload) -> str:
        """Start an upload for tab ``owner``: its id, once the limits allow it."""
        limits = self.limits
        if new.size > limits.max_size:
            raise PayloadTooLarge(
                f"{new.name} is {_size(new.size)}: files of up to {_size(limits.max_size)} only"
            )
        if not accepts(limits.accept, new.type, new.name):
            raise UnsupportedType(
                f"{new.name} is not a file of an accepted type ({', '.join(limits.accept)})"
            )
        self.sweep()
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.private:
            _check_private(self.path)
        tab = self.path / owner
        tab.mkdir(mode=0o700, exist_ok=True)
        if sum(1 for _ in tab.glob("*.json")) >= limits.max_files:
            raise BadRequest(f"at most {limits.max_files} files at a time")
        upload = new_upload_id()
        (tab / f"{upload}.data").touch(mode=0o600)
        record = msgspec.json.encode(_Record(new.name, new.size, new.type))
        partial = tab / f"{upload}.json.partial"
        partial.write_bytes(record)
        partial.replace(tab / f"{upload}.json")  # whole or absent, even if we die here
        return upload

    # -- growing --------------------------------------------------------------------

    def offset(self, owner: str, upload: str) -> int:
        """The bytes of ``upload`` received so far (404 if there is no such upload)."""
        self._record(owner, upload)
        return self._received(owner, upload)

    async def append(
        self, owner: str, upload: str, offset: int, chunks: AsyncIterator[bytes]
    ) -> int:
        """Write ``chunks`` at ``offset`` (which must be the bytes received so far: 409
        otherwise); the new offset. The limits of ``chunks`` (its size, its time) are the
        caller's; a file whose first bytes are not its declared type is dropped (415)."""
        record = self._record(owner, upload)
        data = self._data(owner, upload)
        with _locked(data) as fd:
            received = os.fstat(fd).st_size
            if offset != received:
                raise Conflict(
                    f"upload is at byte {received}, not {offset}",
                    headers={OFFSET_HEADER: str(received)},
                )
            async for chunk in chunks:
                if received + len(chunk) > record.size:
                    raise PayloadTooLarge(f"{record.name} is larger than it said")
                os.write(fd, chunk)
                before, received = received, received + len(chunk)
                if before < SIGNATURE_BYTES <= received or received == record.size:
                    self._check_bytes(owner, upload, record, data)
        return received

    def _check_bytes(self, owner: str, upload: str, record: _Record, data: Path) -> None:
        with data.open("rb") as file:
            head = file.read(SIGNATURE_BYTES)
        found = sniff(head)
        wrong = record.type in SNIFFED and found != record.type
        refused = found is not None and not accepts(self.limits.accept, found, record.name)
        if wrong or refused:
            self.cancel(owner, upload)
            raise UnsupportedType(f"the content of {record.name} is not {record.type or found}")

    # -- ending ---------------------------------------------------------------------

    def cancel(self, owner: str, upload: str) -> None:
        """Forget ``upload`` and delete what it received (404 if there is none)."""
        self._record(owner, upload)
        for suffix in (".json", ".data"):
            (self.path / owner / f"{upload}{suffix}").unlink(missing_ok=True)

    def finished(self, owner: str, upload: str) -> Uploaded | None:
        """The finished upload, None while bytes are missing (404 if there is none)."""
        record = self._record(owner, upload)
        if self._received(owner, upload) != record.size:
            return None
        tab = self.path / owner
        return Uploaded(
            upload,
            record.name,
            record.type,
            record.size,
            tab / f"{upload}.data",
            tab / f"{upload}.json",
        )

    def sweep(self) -> None:
        """Delete the uploads no byte reached for ``ttl`` seconds, and empty tab folders."""
        if not self.path.is_dir():
            return
        oldest = time.time() - self.limits.ttl
        for tab in self.path.iterdir():
            with contextlib.suppress(OSError):  # another process may sweep the same folder
                for item in tab.iterdir():
                    if _last_write(tab, item) < oldest:
                        item.unlink(missing_ok=True)
                if not any(tab.iterdir()):
                    tab.rmdir()

    # -- reading --------------------------------------------------------------------

    def _record(self, owner: str, upload: str) -> _Record:
        try:
            raw = (self.path / owner / f"{upload}.json").read_bytes()
            return msgspec.json.decode(raw, type=_Record)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            raise NotFound(
                "no such upload (finished long ago, cancelled, or never started)"
            ) from None

    def _data(self, owner: str, upload: str) -> Path:
        return self.path / owner / f"{upload}.data"

    def _received(self, owner: str, upload: str) -> int:
        try:
            return self._data(owner, upload).stat().st_size
        except OSError:
            raise NotFound("no such upload") from None


def _check_private(path: Path) -> None:
    """503 unless ``path`` is a real folder of this user that nobody else may enter."""
    found = path.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        log.error("the upload folder %s is not a private folder of this user: refusing it", path)
        raise ServiceUnavailable("uploads are unavailable")


def _last_write(tab: Path, item: Path) -> float:
    """When the upload ``item`` belongs to last changed (its data, else itself)."""
    data = tab / (item.name.split(".", 1)[0] + ".data")
    try:
        return data.stat().st_mtime
    except OSError:
        return item.stat().st_mtime


@contextlib.contextmanager
def _locked(data: Path) -> Iterator[int]:
    """``data`` open for appending, locked against every other writer (409 if taken)."""
    try:
        fd = os.open(data, os.O_WRONLY | os.O_APPEND)
    except OSError:
        raise NotFound("no such upload") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            received = os.fstat(fd).st_size
            raise Conflict(
                "another request is writing this upload", headers={OFFSET_HEADER: str(received)}
            ) from None
        yield fd
    finally:
        os.close(fd)


def _size(count: int) -> str:
    """A byte count as people read it: 512 bytes, 3.2 KiB, 20 MiB."""
    amount = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{amount:.3g} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")
