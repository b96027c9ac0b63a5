"""The decoders of upload requests: arbitrary input is a value or a clean 400."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages.errors import BadRequest
from livepages.uploads.content import accepts, sniff
from livepages.uploads.wire import (
    MAX_NAME,
    NewUpload,
    decode_new_upload,
    new_upload_id,
    parse_offset,
    parse_upload_id,
    upload_ids,
)


@given(st.text())
def test_any_text_is_an_upload_id_or_400(text: str) -> None:
    try:
        upload = parse_upload_id(text)
    except BadRequest:
        return
    # What passes can only be a file name: no separators, no dots, one length.
    assert upload == text
    assert len(upload) == 22
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in upload)


def test_issued_ids_parse() -> None:
    upload = new_upload_id()
    assert parse_upload_id(upload) == upload
    assert new_upload_id() != upload


@given(st.one_of(st.none(), st.text()))
def test_any_header_is_an_offset_or_400(header: str | None) -> None:
    try:
        offset = parse_offset(header)
    except BadRequest:
        return
    assert header is not None
    assert offset == int(header) >= 0


@pytest.mark.parametrize("header", ["-1", "+1", " 1", "1 ", "0x10", "1e3", "", "٣", "9" * 19])
def test_offsets_are_plain_digits(header: str) -> None:
    with pytest.raises(BadRequest):
        parse_offset(header)


@given(st.binary())
def test_any_bytes_are_a_new_upload_or_400(raw: bytes) -> None:
    try:
        new = decode_new_upload(raw)
    except BadRequest:
        return
    assert isinstance(new, NewUpload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@given(st.dictionaries(st.sampled_from(["name", "size", "type", "other"]), json_values))
def test_any_json_object_is_a_new_upload_or_400(value: dict[str, object]) -> None:
    try:
        new = decode_new_upload(json.dumps(value).encode())
    except BadRequest:
        return
    assert new.size >= 0
    assert 0 < len(new.name) <= MAX_NAME
    assert "/" not in new.name
    assert "\\" not in new.name
    assert all(unicodedata.category(c)[0] != "C" for c in new.name + new.type)


def test_names_lose_their_folders_and_control_characters() -> None:
    raw = b'{"name": "C:\\\\evil\\\\..\\\\a\\u0000b.png", "size": 3, "type": "Image/PNG"}'
    assert decode_new_upload(raw) == NewUpload("ab.png", 3, "image/png")
    assert decode_new_upload(b'{"name": "../", "size": 0}').name == "upload"
    with pytest.raises(BadRequest, match="negative"):
        decode_new_upload(b'{"name": "a", "size": -1}')


@given(json_values)
def test_any_signal_value_is_upload_ids_or_400(value: object) -> None:
    try:
        ids = upload_ids(value, "photos")
    except BadRequest:
        return
    assert all(parse_upload_id(upload) == upload for upload in ids)


@given(st.binary(max_size=32))
def test_sniff_never_fails(head: bytes) -> None:
    assert sniff(head) in (
        None,
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
    )


def test_sniff_knows_the_signatures() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"XXXX\x00\x00\x00\x00WEBPVP8 ") is None
    assert sniff(b"GIF89a") == "image/gif"
    assert sniff(b"") is None


@pytest.mark.parametrize(
    ("patterns", "kind", "name", "ok"),
    [
        ((), "anything/at-all", "x", True),
        (("image/*",), "image/png", "x.png", True),
        (("image/*",), "image/", "x", False),
        (("image/*",), "text/plain", "x.png", False),
        (("image/png",), "IMAGE/PNG", "x", True),
        ((".pdf",), "", "Report.PDF", True),
        ((".pdf",), "application/pdf", "report.txt", False),
    ],
)
def test_accept_patterns(patterns: tuple[str, ...], kind: str, name: str, ok: bool) -> None:
    assert accepts(patterns, kind, name) is ok
