"""Per-stream compression for live (SSE) responses.

A live stream is one long response whose events are near-identical re-renders of a page,
so one streaming compression context per connection, flushed after every event, shrinks
them tens to hundreds of times: each event is mostly a back-reference into the previous
one. The price is the context's memory, held for as long as the stream is open, and a
library-default zstd or brotli context holds MiBs. Every setting here is therefore a
memory figure as much as a ratio; ``benchmarks/compression.py`` measures both.

Use::

    settings = CompressionSettings()
    encoding = settings.negotiate(request.headers.get("accept-encoding"))
    if encoding is not None:
        compressor = settings.compressor(encoding)   # send Content-Encoding: <encoding>
        ...
        await send_body(compressor.compress(event))  # the browser can decode it at once
        ...
        await send_body(compressor.close())          # when the stream ends

Measured by ``benchmarks/compression.py`` (2 shared cores, Python 3.11, zlib 1.2.13,
libzstd 1.5.7, brotli 1.2.1): 500 contexts, 40 near-identical Datastar events each; memory
is VmRSS growth per open context once events have flowed; then per workload, the mean size
of an event after the first (the first costs 700-1,900 B everywhere) and the time to
compress one (noisy: other work shared the cores).

| encoding | parameters | KiB/conn | chat (3.4 KB) | board (3.6 KB) | table (19.8 KB) |
|---|---|---:|---:|---:|---:|
| gzip | level=6 wbits=15 mem_level=8 | 210 | 79 B, 83 µs | 117 B, 45 µs | 242 B, 140 µs |
| gzip | level=6 wbits=15 mem_level=4 | 142 | 79 B, 79 µs | 131 B, 42 µs | 265 B, 118 µs |
| gzip | level=6 wbits=13 mem_level=4 | 46 | 79 B, 26 µs | 131 B, 35 µs | 1666 B, 119 µs |
| gzip | level=9 wbits=13 mem_level=4 | 46 | 79 B, 24 µs | 58 B, 55 µs | 1662 B, 206 µs |
| gzip | level=1 wbits=13 mem_level=4 | 46 | 245 B, 19 µs | 375 B, 20 µs | 1824 B, 51 µs |
| gzip | level=6 wbits=12 mem_level=4 | 30 | 80 B, 19 µs | 131 B, 33 µs | 1654 B, 98 µs |
| zstd | level=3 window_log=21 | 1601 | 83 B, 29 µs | 25 B, 21 µs | 25 B, 35 µs |
| zstd | level=6 window_log=16 | 220 | 55 B, 20 µs | 26 B, 17 µs | 23 B, 24 µs |
| zstd | level=6 window_log=15 | 143 | 71 B, 17 µs | 26 B, 15 µs | 23 B, 20 µs |
| zstd | level=6 window_log=13 | 80 | 48 B, 14 µs | 26 B, 13 µs | 1222 B, 71 µs |
| zstd | level=6 window_log=12 | 61 | 63 B, 12 µs | 27 B, 10 µs | 1225 B, 70 µs |
| zstd | level=3 window_log=12 | 61 | 500 B, 12 µs | 603 B, 14 µs | 1768 B, 30 µs |
| br | quality=4 lgwin=22 | 1377 | 63 B, 38 µs | 25 B, 31 µs | 29 B, 94 µs |
| br | quality=4 lgwin=16 | 748 | 63 B, 36 µs | 25 B, 32 µs | 28 B, 78 µs |
| br | quality=2 lgwin=16 | 430 | 76 B, 21 µs | 36 B, 18 µs | 42 B, 53 µs |
| br | quality=1 lgwin=16 | 151 | 772 B, 13 µs | 903 B, 17 µs | 1924 B, 35 µs |

What it shows: an event shrinks only if the window holds the previous one, so the window
must exceed the page's size; a window costs memory; zstd and brotli add fixed costs (zstd
about 45 KiB of tables and buffers, brotli 256 KiB to 1 MiB of hash tables from quality 2).

The defaults keep an idle stream under 64 KiB: only gzip is offered, level 6 with an 8 KiB
window (``wbits=13``) and ``mem_level=4``, 46 KiB a connection. zstd's default (level 6,
``window_log=12``, 61 KiB) is smaller and faster on pages under 4 KB but useless from 4 KB
up (a 6 KB page: 1,057 B an event against gzip's 88 B), so it is not offered by default;
no brotli that refers back to earlier events fits at all. For larger pages, buy a larger
window: ``zstd`` with ``window_log=15`` (32 KiB, 143 KiB a connection) turns a 20 KB page
into 23 B an event.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is an optional dependency
    HAS_ZSTD = False
else:
    HAS_ZSTD = True

try:
    import brotli
except ImportError:  # pragma: no cover - brotli is an optional dependency
    HAS_BROTLI = False
else:
    HAS_BROTLI = True

__all__ = [
    "ENCODINGS",
    "BrotliCompressor",
    "BrotliSettings",
    "CompressionSettings",
    "GzipCompressor",
    "GzipSettings",
    "StreamCompressor",
    "ZstdCompressor",
    "ZstdSettings",
    "available_encodings",
    "negotiate",
]

#: Every content coding livepages can produce, in its default order of preference.
ENCODINGS: tuple[str, ...] = ("zstd", "br", "gzip")

# RFC 9110: a coding is a token; a weight is "q=" then 0 to 1 with at most three decimals.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")
# RFC 9110 asks recipients to treat x-gzip as gzip.
_ALIASES = {"x-gzip": "gzip"}


def available_encodings() -> tuple[str, ...]:
    """The encodings whose library is installed, in default order of preference."""
    usable = {"gzip": True, "zstd": HAS_ZSTD, "br": HAS_BROTLI}
    return tuple(encoding for encoding in ENCODINGS if usable[encoding])


def _weights(accept_encoding: str) -> dict[str, float]:
    """Parse an Accept-Encoding value into ``{coding: q}``; malformed entries are ignored."""
    weights: dict[str, float] = {}
    for entry in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in entry.split(";"))
        if not _TOKEN.match(coding):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.match(value) else -1.0
        if q < 0:
            continue
        # The first mention of a coding counts; a later repeat does not override it.
        weights.setdefault(_ALIASES.get(coding, coding), q)
    return weights


def negotiate(accept_encoding: str | None, available: Sequence[str] | None = None) -> str | None:
    """Choose the content coding for a response, or ``None`` to send it uncompressed.

    The client's weights decide first (``q=0`` forbids a coding, ``*`` stands for every
    coding it does not name); among equally weighted codings the order of ``available``
    decides, which defaults to :func:`available_encodings` (zstd, then br, then gzip).
    A missing, empty or unreadable header gets ``None``.
    """
    if not accept_encoding:
        return None
    weights = _weights(accept_encoding)
    wildcard = weights.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for encoding in available_encodings() if available is None else available:
        q = weights.get(encoding, wildcard)
        if q > best_q:
            best, best_q = encoding, q
    return best


class StreamCompressor(Protocol):
    """One connection's compression context."""

    @property
    def encoding(self) -> str:
        """The Content-Encoding this compressor produces."""
        ...

    def compress(self, event: bytes) -> bytes:
        """Compress one event and flush, so the client can decode all of it at once."""
        ...

    def close(self) -> bytes:
        """End the stream, free the context and return the last bytes to send."""
        ...


def _closed() -> ValueError:
    return ValueError("the compressor is closed")


class GzipCompressor:
    """gzip (deflate) with a ``Z_SYNC_FLUSH`` after every event.

    Memory is about ``2**(wbits + 2) + 2**(mem_level + 9)`` bytes (zlib's formula) plus a
    fixed 6 KiB: the window is the distance back that an event can copy from, so it has to
    hold the previous event for near-identical events to shrink.
    """

    encoding = "gzip"

    def __init__(self, level: int = 6, wbits: int = 13, mem_level: int = 4) -> None:
        # 16 + wbits asks zlib for the gzip wrapper that Content-Encoding: gzip expects.
        self._zlib: zlib._Compress | None = zlib.compressobj(
            level, zlib.DEFLATED, 16 + wbits, mem_level
        )

    def compress(self, event: bytes) -> bytes:
        if self._zlib is None:
            raise _closed()
        return self._zlib.compress(event) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def close(self) -> bytes:
        if self._zlib is None:
            return b""
        tail = self._zlib.flush(zlib.Z_FINISH)
        self._zlib = None
        return tail


class ZstdCompressor:
    """Zstandard with a block flush after every event.

    The hash and chain tables get at most a quarter as many entries as the window has
    bytes: zstd's own choice for level 6 is 2**19 and 2**18 entries whatever the window,
    about 3 MiB, against 48 KiB at ``window_log=12`` for a few bytes more per event.
    """

    encoding = "zstd"

    # The output buffer for one call; a flushed event that compresses to more simply takes
    # several chunks. zstandard's default (128 KiB) would be held by every connection.
    _CHUNK_SIZE = 2048

    def __init__(self, level: int = 6, window_log: int = 12) -> None:
        if not HAS_ZSTD:
            raise RuntimeError("zstd needs the zstandard package: pip install zstandard")
        table_log = window_log - 2
        base = zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log)
        params = zstandard.ZstdCompressionParameters.from_level(
            level,
            window_log=window_log,
            hash_log=min(base.hash_log, table_log),
            chain_log=min(base.chain_log, table_log),
        )
        context = zstandard.ZstdCompressor(compression_params=params)
        # Any: zstandard's type stubs leave the chunker's methods untyped.
        self._chunker: Any = context.chunker(chunk_size=self._CHUNK_SIZE)

    def compress(self, event: bytes) -> bytes:
        if self._chunker is None:
            raise _closed()
        return b"".join([*self._chunker.compress(event), *self._chunker.flush()])

    def close(self) -> bytes:
        if self._chunker is None:
            return b""
        tail = b"".join(self._chunker.finish())
        self._chunker = None
        return tail


class BrotliCompressor:
    """Brotli (text mode) with a flush after every event.

    Qualities 2 and up keep hash tables of 256 KiB to 1 MiB whatever ``lgwin`` is;
    qualities 0 and 1 are small but do not refer back to earlier events, so they hardly
    shrink a live stream.
    """

    encoding = "br"

    def __init__(self, quality: int = 2, lgwin: int = 16) -> None:
        if not HAS_BROTLI:
            raise RuntimeError("br needs the brotli package: pip install brotli")
        # Any: brotli ships no type information.
        self._brotli: Any = brotli.Compressor(mode=brotli.MODE_TEXT, quality=quality, lgwin=lgwin)

    def compress(self, event: bytes) -> bytes:
        if self._brotli is None:
            raise _closed()
        out: bytes = self._brotli.process(event) + self._brotli.flush()
        return out

    def close(self) -> bytes:
        if self._brotli is None:
            return b""
        tail: bytes = self._brotli.finish()
        self._brotli = None
        return tail


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")


class GzipSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """gzip parameters: ``level`` 1-9, ``wbits`` 9-15 (window 2**wbits), ``mem_level`` 1-9."""

    level: int = 6
    wbits: int = 13
    mem_level: int = 4

    def __post_init__(self) -> None:
        _check_range("gzip level", self.level, 1, 9)
        _check_range("gzip wbits", self.wbits, 9, 15)
        _check_range("gzip mem_level", self.mem_level, 1, 9)

    def compressor(self) -> GzipCompressor:
        """A new compression context with these parameters."""
        return GzipCompressor(self.level, self.wbits, self.mem_level)


class ZstdSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """zstd parameters: ``level`` -7 to 22, ``window_log`` 10-23 (window 2**window_log).

    The default fits 64 KiB a connection but helps only pages under 4 KB; RFC 9659 lets
    HTTP clients refuse windows over 8 MiB, hence at most 23. Levels 1 to 4 do poorly on
    small windows (see the table above).
    """

    level: int = 6
    window_log: int = 12

    def __post_init__(self) -> None:
        _check_range("zstd level", self.level, -7, 22)
        _check_range("zstd window_log", self.window_log, 10, 23)

    def compressor(self) -> ZstdCompressor:
        """A new compression context with these parameters."""
        return ZstdCompressor(self.level, self.window_log)


class BrotliSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """brotli parameters: ``quality`` 0-11, ``lgwin`` 10-24 (window 2**lgwin - 16).

    The default is the cheapest brotli that refers back to earlier events: about 430 KiB a
    connection, with a 64 KiB window since the window adds little to that.
    """

    quality: int = 2
    lgwin: int = 16

    def __post_init__(self) -> None:
        _check_range("brotli quality", self.quality, 0, 11)
        _check_range("brotli lgwin", self.lgwin, 10, 24)

    def compressor(self) -> BrotliCompressor:
        """A new compression context with these parameters."""
        return BrotliCompressor(self.quality, self.lgwin)


class CompressionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which encodings live streams may use, in order of preference, and their parameters.

    ``encodings`` lists the codings to offer; an empty tuple turns compression off. Codings
    whose library is missing are skipped when negotiating.
    """

    # The only encoding whose default parameters fit 64 KiB a connection and a page of
    # up to 8 KB (see the table above).
    encodings: tuple[str, ...] = ("gzip",)
    gzip: GzipSettings = GzipSettings()
    zstd: ZstdSettings = ZstdSettings()
    brotli: BrotliSettings = BrotliSettings()

    def __post_init__(self) -> None:
        for encoding in self.encodings:
            if encoding not in ENCODINGS:
                raise ValueError(f"unknown encoding {encoding!r}: choose from {ENCODINGS}")
        if len(set(self.encodings)) != len(self.encodings):
            raise ValueError(f"encodings are listed twice: {self.encodings}")

    def negotiate(self, accept_encoding: str | None) -> str | None:
        """The encoding to use for a client's Accept-Encoding, or ``None`` for none."""
        installed = available_encodings()
        offered = [encoding for encoding in self.encodings if encoding in installed]
        return negotiate(accept_encoding, offered)

    def compressor(self, encoding: str) -> StreamCompressor:
        """A new compression context for ``encoding`` with these parameters."""
        if encoding == "gzip":
            return self.gzip.compressor()
        if encoding == "zstd":
            return self.zstd.compressor()
        if encoding == "br":
            return self.brotli.compressor()
        raise ValueError(f"unknown encoding {encoding!r}: choose from {ENCODINGS}")
