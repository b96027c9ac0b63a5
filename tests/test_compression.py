"""Tests for livepages.compression: streams that decode event by event, negotiation, settings."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from livepages import compression
from livepages.compression import (
    BrotliSettings,
    CompressionSettings,
    GzipSettings,
    StreamCompressor,
    ZstdSettings,
    available_encodings,
    negotiate,
)
from livepages.datastar import patch_elements
from tests.fixtures.common import missing_dependency


def require(encoding: str) -> None:
    if encoding not in available_encodings():
        missing_dependency(f"{encoding} needs its library: pip install 'livepages[compression]'")


def decoder(encoding: str) -> Callable[[bytes], bytes]:
    """An incremental decoder like the browser's: feed it chunks, get text as it decodes."""
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress
    import brotli

    process: Callable[[bytes], bytes] = brotli.Decompressor().process
    return process


def board_events(count: int) -> list[bytes]:
    """Near-identical re-renders of a 40x40 board, one cell changing per event."""
    cells = ["." * 40 for _ in range(40)]
    events = []
    for k in range(count):
        row = cells[k % 40]
        cells[k % 40] = row[: k % 37] + "#" + row[k % 37 + 1 :]
        rows = "".join(f'<pre id="r{y}">{line}</pre>' for y, line in enumerate(cells))
        events.append(patch_elements(f'<div id="board"><h1>Move {k}</h1>{rows}</div>'))
    return events


def list_event(seed: int) -> bytes:
    """A ~3 KB list of pseudo-random words: little for a compressor to find within it."""
    rng = random.Random(seed)
    words = ["live", "page", "stream", "morph", "signal", "render", "event", "patch"]
    items = "".join(f"<li>{' '.join(rng.choices(words, k=12))}</li>" for _ in range(40))
    return patch_elements(f'<ul id="list">{items}</ul>')


def check_stream(compressor: StreamCompressor, events: list[bytes]) -> list[bytes]:
    """Each event must decode completely from the chunks up to its own; return the chunks."""
    decode = decoder(compressor.encoding)
    decoded = b""
    chunks = []
    for k, event in enumerate(events):
        chunk = compressor.compress(event)
        chunks.append(chunk)
        decoded += decode(chunk)
        assert decoded == b"".join(events[: k + 1]), f"event {k} is not complete after its chunk"
    assert decode(compressor.close()) == b""
    return chunks


ENCODINGS = ["gzip", "zstd", "br"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_event_decodes_right_after_its_chunk(encoding: str) -> None:
    require(encoding)
    events = board_events(30)
    chunks = check_stream(CompressionSettings().compressor(encoding), events)
    # The context carries over: a near-identical event costs a small fraction of itself.
    for event, chunk in zip(events[1:], chunks[1:], strict=True):
        assert len(chunk) * 10 < len(event)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_closed_stream_is_a_complete_one(encoding: str) -> None:
    require(encoding)
    events = board_events(3)
    compressor = CompressionSettings().compressor(encoding)
    data = b"".join([compressor.compress(event) for event in events]) + compressor.close()
    if encoding == "gzip":
        assert zlib.decompress(data, 16 + zlib.MAX_WBITS) == b"".join(events)
    elif encoding == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().decompressobj()
        assert reader.decompress(data) == b"".join(events)
        assert reader.eof
    else:
        import brotli

        assert brotli.decompress(data) == b"".join(events)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_empty_event_keeps_the_stream_valid(encoding: str) -> None:
    require(encoding)
    events = [b"", *board_events(2), b""]
    check_stream(CompressionSettings().compressor(encoding), events)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_closing_frees_the_context_and_is_idempotent(encoding: str) -> None:
    require(encoding)
    compressor = CompressionSettings().compressor(encoding)
    compressor.compress(b"data: elements <p id='x'>hi</p>\n\n")
    assert compressor.close()
    assert compressor.close() == b""
    with pytest.raises(ValueError, match="closed"):
        compressor.compress(b"more")


# The extremes of every validated range must be accepted by the library and still stream.
EXTREME_SETTINGS: list[tuple[str, Any]] = [
    ("gzip", GzipSettings(level=1, wbits=9, mem_level=1)),
    ("gzip", GzipSettings(level=9, wbits=15, mem_level=9)),
    ("zstd", ZstdSettings(level=-7, window_log=10)),
    ("zstd", ZstdSettings(level=22, window_log=23)),
    ("br", BrotliSettings(quality=0, lgwin=10)),
    ("br", BrotliSettings(quality=11, lgwin=24)),
]


@pytest.mark.parametrize(("encoding", "settings"), EXTREME_SETTINGS)
def test_extreme_settings_still_stream(encoding: str, settings: Any) -> None:
    require(encoding)
    compressor = settings.compressor()
    assert compressor.encoding == encoding
    check_stream(compressor, board_events(5))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),  # what current browsers send
        ("gzip, deflate, br", "br"),
        ("deflate", None),
        ("identity", None),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        (" gzip ;  q=0.5 , deflate", "gzip"),
        # Weights come before livepages' preference.
        ("zstd;q=0.5, gzip", "gzip"),
        ("gzip;q=1.0, br;q=0.999", "gzip"),
        ("gzip;Q=0.8, br;q=0.2", "gzip"),
        # q=0 means "not acceptable".
        ("zstd;q=0, gzip", "gzip"),
        ("zstd;q=0.000, br;q=0, gzip;q=0", None),
        # "*" stands for every coding not named.
        ("*", "zstd"),
        ("*;q=0", None),
        ("*, zstd;q=0", "br"),
        ("gzip;q=0, *;q=0.5", "zstd"),
        ("br;q=0.5, *;q=0.1", "br"),
        ("gzip, *;q=0", "gzip"),
        # The first mention of a coding counts.
        ("gzip;q=0, gzip", None),
        # Parameters other than q, and empty ones, are ignored.
        ("gzip;level=9", "gzip"),
        ("gzip" + ";" * 1000, "gzip"),
    ],
)
def test_negotiate(header: str | None, expected: str | None) -> None:
    assert negotiate(header, ["zstd", "br", "gzip"]) == expected


@pytest.mark.parametrize(
    "header",
    [
        "gzip;q=abc",
        "gzip;q=2",
        "gzip;q=1.5",
        "gzip;q=-1",
        "gzip;q=0.0001",  # at most three decimals
        "gzip;q=nan",
        "gzip;q=inf",
        "gzip;q=",
        "gz ip",
        "gzip\x00",
        ",,,;;;",
        ";q=1",
        "é, ü",
        "\x7f\x00",
        "gzip;q=1;q=oops",
        "a, " * 10_000,
    ],
)
def test_negotiate_ignores_malformed_entries(header: str) -> None:
    assert negotiate(header, ["zstd", "br", "gzip"]) is None


def test_negotiate_keeps_the_good_entries_of_a_bad_header() -> None:
    assert negotiate("zstd;q=nope, gzip;q=0.5, ,br;q=7", ["zstd", "br", "gzip"]) == "gzip"


def test_negotiate_follows_the_servers_order_between_equal_weights() -> None:
    assert negotiate("br, gzip", ["gzip", "br"]) == "gzip"
    assert negotiate("br, gzip", ["br", "gzip"]) == "br"
    assert negotiate("br;q=0.5, gzip;q=0.6", ["br", "gzip"]) == "gzip"
    assert negotiate("zstd, gzip", ["gzip"]) == "gzip"
    assert negotiate("gzip", []) is None


def test_negotiate_defaults_to_the_installed_encodings() -> None:
    assert negotiate("gzip, br, zstd") == available_encodings()[0]
    assert available_encodings()[-1] == "gzip"


def test_missing_libraries_are_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "HAS_ZSTD", False)
    monkeypatch.setattr(compression, "HAS_BROTLI", False)
    assert available_encodings() == ("gzip",)
    assert negotiate("zstd, br, gzip") == "gzip"
    settings = CompressionSettings(encodings=("zstd", "br", "gzip"))
    assert settings.negotiate("zstd, br, gzip") == "gzip"
    assert settings.negotiate("zstd, br") is None
    with pytest.raises(RuntimeError, match="zstandard"):
        settings.compressor("zstd")
    with pytest.raises(RuntimeError, match="brotli"):
        settings.compressor("br")


def test_default_settings_offer_only_encodings_within_the_memory_budget() -> None:
    settings = CompressionSettings()
    assert settings.encodings == ("gzip",)
    assert settings.negotiate("gzip, deflate, br, zstd") == "gzip"
    assert settings.negotiate("br, zstd") is None


def test_settings_order_is_the_preference() -> None:
    require("zstd")
    require("br")
    settings = CompressionSettings(encodings=("br", "gzip", "zstd"))
    assert settings.negotiate("gzip, br, zstd") == "br"
    assert settings.negotiate("gzip, zstd") == "gzip"
    assert CompressionSettings(encodings=()).negotiate("gzip, br, zstd") is None


def test_settings_make_compressors_with_their_parameters() -> None:
    require("zstd")
    settings = CompressionSettings(gzip=GzipSettings(level=1, wbits=9, mem_level=1))
    assert settings.compressor("gzip").encoding == "gzip"
    assert settings.compressor("zstd").encoding == "zstd"
    # The window is what an event can refer back to: 512 bytes cannot hold the last event,
    # so a repeat costs about as much as the first time; the default window holds it.
    event = list_event(1)
    small = settings.compressor("gzip")
    first, again = small.compress(event), small.compress(event)
    assert len(again) * 2 > len(first)
    large = CompressionSettings().compressor("gzip")
    first, again = large.compress(event), large.compress(event)
    assert len(again) * 10 < len(first)


def test_settings_decode_from_plain_data() -> None:
    raw = {"encodings": ["zstd", "gzip"], "zstd": {"window_log": 15}, "gzip": {"level": 9}}
    settings = msgspec.convert(raw, CompressionSettings)
    assert settings.encodings == ("zstd", "gzip")
    assert settings.zstd == ZstdSettings(window_log=15)
    assert settings.gzip == GzipSettings(level=9)
    assert settings.brotli == BrotliSettings()


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (GzipSettings, {"level": 0}),
        (GzipSettings, {"level": 10}),
        (GzipSettings, {"wbits": 8}),
        (GzipSettings, {"wbits": 16}),
        (GzipSettings, {"mem_level": 0}),
        (GzipSettings, {"mem_level": 10}),
        (ZstdSettings, {"level": -8}),
        (ZstdSettings, {"level": 23}),
        (ZstdSettings, {"window_log": 9}),
        (ZstdSettings, {"window_log": 24}),
        (BrotliSettings, {"quality": -1}),
        (BrotliSettings, {"quality": 12}),
        (BrotliSettings, {"lgwin": 9}),
        (BrotliSettings, {"lgwin": 25}),
        (CompressionSettings, {"encodings": ("deflate",)}),
        (CompressionSettings, {"encodings": ("gzip", "gzip")}),
    ],
)
def test_settings_reject_out_of_range_values(cls: type[Any], params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be|unknown|twice"):
        cls(**params)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(params, cls)


def test_settings_reject_wrong_types() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"level": "high"}, GzipSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"gzip": {"wbits": 13, "window": 1}}, CompressionSettings)


def test_unknown_encoding_has_no_compressor() -> None:
    with pytest.raises(ValueError, match="unknown encoding 'deflate'"):
        CompressionSettings().compressor("deflate")
