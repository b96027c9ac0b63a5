"""Content-hashed static files that browsers cache forever.

``Assets`` is an ASGI application for an app's static folder. ``url("app.css")``
gives ``/_static/app.3f2a9c0d1b7e4a56.css``: the file name carries the first 16
hex digits of the SHA-256 of its content, so the URL changes exactly when the
content does, and the response can be cached for a year without revalidation
(``Cache-Control: public, max-age=31536000, immutable``). The plain name
(``/_static/app.css``) is served too, with ``Cache-Control: no-cache``, so
hand-written links keep working.

In production the file set is fixed at start-up: every file is hashed once,
kept in memory up to a per-file cap, and compressed once with brotli and gzip,
so a request is a dict lookup and one ``send``. Only files found at start-up are
ever served, which also makes path traversal impossible by construction.

In dev mode (``dev=True``) every request reads the file from disk, ``url()``
reflects the current content, and everything is sent with ``no-cache``.

Mount it in a Starlette app with ``Mount(assets.prefix, app=assets)``.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import importlib
import logging
import mimetypes
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.types import Receive, Scope, Send

from livepages.compression import negotiate

brotli: ModuleType | None
try:
    brotli = importlib.import_module("brotli")
except ImportError:  # pragma: no cover - brotli is an optional extra
    brotli = None

__all__ = ["Assets", "UnknownAsset"]

logger = logging.getLogger("livepages.assets")

#: Hex digits of the SHA-256 kept in URLs and ETags: 64 bits, ample to tell the
#: versions of one file apart.
HASH_LENGTH = 16
#: Files up to this size are kept in memory in production; larger ones are
#: streamed from disk on each request.
CACHE_LIMIT = 4 * 1024 * 1024
#: Smaller bodies gain too little from compression to be worth a variant.
COMPRESS_MIN_SIZE = 1024
#: Brotli's best quality costs about 1.5 s per MiB; above this size the next
#: level down is used, which is 40 times faster and about 10 % larger.
BROTLI_MAX_QUALITY_SIZE = 256 * 1024
CHUNK_SIZE = 64 * 1024

IMMUTABLE = b"public, max-age=31536000, immutable"
NO_CACHE = b"no-cache"
ALLOW = b"GET, HEAD"

#: Content codings in order of preference when a client accepts several equally.
CODINGS = ("br", "gzip")
#: The file suffix of a pre-compressed variant, for each coding.
CODING_SUFFIX = {"br": ".br", "gzip": ".gz"}

#: Types that mimetypes gets wrong or lacks. ``text/javascript`` is the type the
#: HTML standard requires for scripts; ``.gz`` on its own is a gzip download.
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".webmanifest": "application/manifest+json",
    ".gz": "application/gzip",
}
COMPRESSIBLE_TYPES = frozenset(
    {"application/json", "application/xml", "application/wasm", "image/svg+xml"}
)

# A private table of the standard library's built-in types only: the global one
# also reads /etc/mime.types, which would make Content-Type depend on the host.
_mimetypes = mimetypes.MimeTypes()

_HASHED_NAME = re.compile(r"(?P<stem>.+)\.(?P<hash>[0-9a-f]{16})(?P<suffix>\.[^./]*)?")
_DECODE_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error)
if brotli is not None:
    _DECODE_ERRORS += (brotli.error,)


class UnknownAsset(LookupError):
    """``url()`` was asked for a file that does not exist, e.g. a typo in a template."""

    def __init__(self, name: str, where: str, suggestions: list[str] | None = None) -> None:
        self.name = name
        message = f"no static file named {name!r} in {where}"
        if suggestions:
            message += f"; did you mean {' or '.join(map(repr, suggestions))}?"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Body:
    """One representation of a file: bytes in memory, or a file streamed from disk."""

    etag: bytes
    size: int
    data: bytes | None = None
    path: Path | None = None
    #: (size, mtime, inode) at start-up, so a streamed file that changed since
    #: is refused rather than served under the old hash.
    identity: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class _Asset:
    """A file with its hash, media type and representations by content coding."""

    name: str
    digest: str
    media_type: bytes
    body: _Body
    encoded: Mapping[str, _Body]


class Assets:
    """Serve a static folder with content-hashed, forever-cacheable URLs.

    ``directory`` is the static folder (optional); ``files`` adds single files
    from elsewhere under the given names, e.g. ``{"datastar.js": path}``.
    ``prefix`` is where the app is mounted; ``url()`` builds URLs under it.
    With ``dev=True`` files are read from disk on every request and nothing is
    cached. ``cache_limit`` is the largest file kept in memory in production.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        prefix: str = "/_static",
        dev: bool = False,
        files: Mapping[str, str | os.PathLike[str]] | None = None,
        cache_limit: int = CACHE_LIMIT,
    ) -> None:
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"the assets prefix must start with '/', not {prefix!r}")
        self.prefix = prefix.rstrip("/")
        self.dev = dev
        self.cache_limit = cache_limit
        self.directory = _static_directory(directory) if directory is not None else None
        self._files = {name: _extra_file(name, path) for name, path in (files or {}).items()}
        for name in self._files:
            if self.directory is not None and (self.directory / name).exists():
                raise ValueError(f"{name!r} is both in {self.directory} and in files=")
        # dev: path -> ((size, mtime, inode), digest), so url() re-hashes only on change.
        self._dev_digests: dict[Path, tuple[tuple[int, int, int], str]] = {}
        # production: request name (hashed or plain) -> (asset, served as immutable)
        self._routes: dict[str, tuple[_Asset, bool]] = {}
        self._urls: dict[str, str] = {}
        if not dev:
            for name, path in self._sources().items():
                asset = _load(name, path, cache_limit, compress=True)
                hashed = _hashed_name(name, asset.digest)
                self._routes[name] = (asset, False)
                self._routes[hashed] = (asset, True)
                self._urls[name] = f"{self.prefix}/{quote(hashed)}"

    def url(self, name: str) -> str:
        """The content-hashed URL of the file ``name`` (relative, ``/``-separated).

        ``url("img/logo.svg")`` gives ``/_static/img/logo.<hash>.svg``. Raises
        ``UnknownAsset`` (a ``LookupError``) when there is no such file.
        """
        if not self.dev:
            try:
                return self._urls[name]
            except KeyError:
                raise self._unknown(name) from None
        path = self._locate(name)
        if path is None:
            raise self._unknown(name)
        return f"{self.prefix}/{quote(_hashed_name(name, self._dev_digest(path)))}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer GET and HEAD for the path below the mount point."""
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
                return
            raise RuntimeError(f"Assets serves HTTP only, not {scope['type']!r}")
        if scope["method"] not in ("GET", "HEAD"):
            await _send_error(send, 405, [(b"allow", ALLOW)])
            return
        name = _route_name(scope)
        if self.dev:
            found = await anyio.to_thread.run_sync(self._load_dev, name)
        else:
            found = self._routes.get(name)
        if found is None:
            await _send_error(send, 404)
            return
        asset, immutable = found
        await _respond(scope, send, asset, IMMUTABLE if immutable else NO_CACHE)

    # -- finding files ---------------------------------------------------------

    def _sources(self) -> dict[str, Path]:
        """Every servable file by name: the folder's, then the extra ``files``."""
        sources = dict(_scan(self.directory)) if self.directory is not None else {}
        # x.css.gz beside x.css is a variant of x.css, not a file of its own.
        for name in list(sources):
            for suffix in CODING_SUFFIX.values():
                sources.pop(name + suffix, None)
        sources.update(self._files)
        return sources

    def _locate(self, name: str) -> Path | None:
        """The file behind ``name`` on disk now, or None (dev mode)."""
        if name in self._files:
            return self._files[name]
        if self.directory is None or not _is_safe_name(name):
            return None
        # Resolve one segment at a time, as the production scan does: a link to a
        # folder outside is refused even when what it leads to is back inside.
        path = self.directory
        for part in name.split("/"):
            inside = _inside(self.directory, path / part)
            if inside is None:
                return None
            path = inside
        if not path.is_file():
            return None
        # x.css.gz beside x.css is not served on its own, as in production.
        for suffix in CODING_SUFFIX.values():
            if name.endswith(suffix) and self._locate(name.removesuffix(suffix)) is not None:
                return None
        return path

    def _load_dev(self, name: str) -> tuple[_Asset, bool] | None:
        """Read the file for one dev request; any hash in the name is accepted."""
        path = self._locate(name)
        if path is None:
            match = _HASHED_NAME.fullmatch(name)
            if match is None:
                return None
            name = match["stem"] + (match["suffix"] or "")
            path = self._locate(name)
            if path is None:
                return None
        try:
            return _load(name, path, self.cache_limit, compress=False), False
        except OSError:  # deleted or replaced between the look-up and the read
            return None

    def _dev_digest(self, path: Path) -> str:
        key = _identity(path.stat())
        cached = self._dev_digests.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()[:HASH_LENGTH]
        self._dev_digests[path] = (key, digest)
        return digest

    def _unknown(self, name: str) -> UnknownAsset:
        known = list(self._urls) if not self.dev else list(self._sources())
        where = f"{self.directory}" if self.directory is not None else "Assets(files=...)"
        return UnknownAsset(name, where, difflib.get_close_matches(name, known, n=2))


# -- start-up: scanning, hashing, compressing --------------------------------------


def _static_directory(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory).resolve()
    if not path.exists():
        raise FileNotFoundError(f"static directory {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"static directory {path} is not a directory")
    return path


def _extra_file(name: str, path: str | os.PathLike[str]) -> Path:
    if not _is_safe_name(name):
        raise ValueError(f"{name!r} is not a valid static file name (relative, no dot-names)")
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"static file {name!r}: {path} is not a file")
    return resolved


def _is_safe_name(name: str) -> bool:
    """True for a relative ``/``-separated name with no hidden or special parts.

    Refuses ``..``, empty segments (so no absolute paths), dot-files, backslashes
    and NUL. The name is checked as given: it was percent-decoded once by the
    server and is never decoded again, so ``%2e%2e`` stays a literal name.
    """
    if not name or "\\" in name or "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in a file name on disk
        return False
    return all(part and not part.startswith(".") for part in name.split("/"))


def _inside(root: Path, path: Path) -> Path | None:
    """``path`` with symlinks resolved, if it exists and stays inside ``root``."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    return resolved if resolved.is_relative_to(root) else None


def _scan(root: Path) -> Iterator[tuple[str, Path]]:
    """Yield (name, resolved path) for every servable file under ``root``.

    Symlinks are followed so long as they stay inside ``root``; a link back to
    one of its own parent folders is skipped rather than walked forever.
    """

    def walk(folder: Path, prefix: str, parents: frozenset[Path]) -> Iterator[tuple[str, Path]]:
        for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
            name = prefix + entry.name
            path = _inside(root, Path(entry.path))
            if path is None or not _is_safe_name(name):
                continue
            if path.is_dir() and path not in parents:
                yield from walk(path, name + "/", parents | {path})
            elif stat.S_ISREG(path.stat().st_mode):  # not a FIFO, socket or device
                yield name, path

    return walk(root, "", frozenset({root}))


def _load(name: str, path: Path, cache_limit: int, *, compress: bool) -> _Asset:
    """Hash a file and build its representations."""
    info = path.stat()
    data: bytes | None = None
    if info.st_size <= cache_limit:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:HASH_LENGTH]
        body = _Body(_etag(digest), len(data), data=data)
    else:
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()[:HASH_LENGTH]
        body = _Body(_etag(digest), info.st_size, path=path, identity=_identity(info))
    media_type = _media_type(name)
    encoded: dict[str, _Body] = {}
    if compress:
        for coding in CODINGS:
            variant = _precompressed(path, coding, body, digest, cache_limit)
            if variant is None and data is not None and _compressible(media_type, len(data)):
                variant = _compressed(data, coding, digest)
            if variant is not None and variant.size < body.size:
                encoded[coding] = variant
    return _Asset(name, digest, _content_type(media_type), body, encoded)


def _precompressed(
    path: Path, coding: str, body: _Body, digest: str, cache_limit: int
) -> _Body | None:
    """The ``x.css.br`` / ``x.css.gz`` beside ``path``, if it decodes to the same bytes.

    A variant that is out of date would put old content under the new hash's
    immutable URL, so each one is decoded and compared once at start-up.
    """
    variant = path.with_name(path.name + CODING_SUFFIX[coding])
    try:
        info = variant.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if coding == "br" and brotli is None:
        logger.warning("ignoring %s: brotli is not installed to check it", variant)
        return None
    if not _decodes_to(variant, coding, body.size, digest):
        logger.warning("ignoring %s: it does not decode to the content of %s", variant, path)
        return None
    etag = _etag(f"{digest}-{coding}")
    if body.data is not None and info.st_size <= cache_limit:
        return _Body(etag, info.st_size, data=variant.read_bytes())
    return _Body(etag, info.st_size, path=variant, identity=_identity(info))


def _decodes_to(path: Path, coding: str, size: int, digest: str) -> bool:
    """Decode ``path`` in bounded chunks and compare its size and hash."""
    sha = hashlib.sha256()
    total = 0
    try:
        with path.open("rb") as file:
            for piece in _decoded_chunks(file.read, coding):
                total += len(piece)
                if total > size:  # also stops a decompression bomb early
                    return False
                sha.update(piece)
    except _DECODE_ERRORS as exc:
        logger.debug("cannot decode %s: %s", path, exc)
        return False
    return total == size and sha.hexdigest()[:HASH_LENGTH] == digest


def _decoded_chunks(read: Callable[[int], bytes], coding: str) -> Iterator[bytes]:
    """Yield the decoded content of a compressed file, at most CHUNK_SIZE at a time."""
    if coding == "gzip":
        inflate = zlib.decompressobj(wbits=31)  # 31: expect a gzip header
        while chunk := read(CHUNK_SIZE):
            while chunk:
                yield inflate.decompress(chunk, CHUNK_SIZE)
                chunk = inflate.unconsumed_tail
        if not inflate.eof:
            raise EOFError("truncated gzip data")
        return
    assert brotli is not None
    decoder = brotli.Decompressor()
    while chunk := read(CHUNK_SIZE):
        yield decoder.process(chunk, output_buffer_limit=CHUNK_SIZE)
        while not decoder.can_accept_more_data():
            yield decoder.process(b"", output_buffer_limit=CHUNK_SIZE)
    if not decoder.is_finished():
        raise EOFError("truncated brotli data")


def _compressed(data: bytes, coding: str, digest: str) -> _Body | None:
    if coding == "gzip":
        # mtime=0 keeps the output identical across restarts and machines.
        packed = gzip.compress(data, compresslevel=9, mtime=0)
    elif brotli is not None:
        quality = 11 if len(data) <= BROTLI_MAX_QUALITY_SIZE else 9
        packed = brotli.compress(data, quality=quality)
    else:
        return None
    return _Body(_etag(f"{digest}-{coding}"), len(packed), data=packed)


def _media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    media_type = MEDIA_TYPES.get(suffix) or _mimetypes.types_map[True].get(suffix)
    return media_type or "application/octet-stream"


def _content_type(media_type: str) -> bytes:
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return media_type.encode("latin-1")


def _compressible(media_type: str, size: int) -> bool:
    return size >= COMPRESS_MIN_SIZE and (
        media_type.startswith("text/")
        or media_type in COMPRESSIBLE_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


def _hashed_name(name: str, digest: str) -> str:
    """``img/logo.svg`` -> ``img/logo.<digest>.svg``; ``LICENSE`` -> ``LICENSE.<digest>``."""
    folder, slash, last = name.rpartition("/")
    stem, dot, suffix = last.rpartition(".")
    last = f"{stem}.{digest}.{suffix}" if dot and stem else f"{last}.{digest}"
    return folder + slash + last


def _etag(tag: str) -> bytes:
    return f'"{tag}"'.encode("ascii")


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_size, info.st_mtime_ns, info.st_ino


# -- per request ---------------------------------------------------------------


def _route_name(scope: Scope) -> str:
    """The requested file name: the decoded path below the mount point, no leading '/'.

    Starlette's ``Mount`` keeps the full path and extends ``root_path``.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return path[1:] if path.startswith("/") else ""


def _header(scope: Scope, name: bytes) -> str | None:
    """A request header's value, repeated fields joined with commas."""
    values = [value for key, value in scope["headers"] if key == name]
    return b", ".join(values).decode("latin-1") if values else None


def _etag_matches(if_none_match: str, etag: bytes) -> bool:
    """Weak comparison, as If-None-Match requires (RFC 9110 13.1.2)."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.decode("ascii")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


async def _respond(scope: Scope, send: Send, asset: _Asset, cache_control: bytes) -> None:
    coding = None
    if asset.encoded:
        accept_encoding = _header(scope, b"accept-encoding")
        # ``encoded`` was filled in CODINGS order, which breaks ties in q-values.
        coding = negotiate(accept_encoding, tuple(asset.encoded))
    body = asset.encoded[coding] if coding else asset.body
    headers = [
        (b"etag", body.etag),
        (b"cache-control", cache_control),
        # Every response varies: a cache must not hand a brotli body to a client
        # that did not ask for it (and dev responses never have variants, but the
        # same URL may in production).
        (b"vary", b"Accept-Encoding"),
    ]
    if_none_match = _header(scope, b"if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, body.etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-type", asset.media_type),
        (b"content-length", b"%d" % body.size),
        # The types are right, so forbid guessing: a mislabelled file must not
        # run as a script.
        (b"x-content-type-options", b"nosniff"),
    ]
    if coding:
        headers.append((b"content-encoding", coding.encode("ascii")))
    head = scope["method"] == "HEAD"
    if body.data is not None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body.data})
        return
    await _stream(send, body, headers, head)


async def _stream(send: Send, body: _Body, headers: list[tuple[bytes, bytes]], head: bool) -> None:
    """Send a large file from disk in chunks, if it is still the file that was hashed."""
    assert body.path is not None
    try:
        file = await anyio.open_file(body.path, "rb")
    except OSError:
        await _send_error(send, 404)
        return
    async with file:
        if _identity(os.fstat(file.wrapped.fileno())) != body.identity:
            # Changed since start-up: its content no longer matches the hash
            # in the URL and ETag. Refuse it until the app restarts.
            await _send_error(send, 404)
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        remaining = 0 if head else body.size
        while remaining > 0:
            chunk = await file.read(min(CHUNK_SIZE, remaining))
            if not chunk:  # truncated under us; the length was promised, so stop here
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0 or head:
            await send({"type": "http.response.body", "body": b""})


async def _send_error(
    send: Send, status: int, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    text = {404: b"Not Found", 405: b"Method Not Allowed"}[status]
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(text)),
        # A 404 for a hash another server already has (a rolling deploy) must
        # not be kept by a CDN.
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})
