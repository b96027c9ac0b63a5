"""Content types of uploads: what an app accepts, and what the bytes really are.

The browser's word for a file's type (``File.type``, from its name) is checked
against the app's ``upload_accept`` patterns when the upload starts, and the first
bytes are checked against that word as soon as they arrive: a file that claims to
be a PNG must start like one. Types without a known signature are taken at their
word (and their name), which is why ``accept`` lists of images are safer than
lists of text formats.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SIGNATURE_BYTES", "accepts", "sniff"]

#: Bytes needed to recognise every signature below.
SIGNATURE_BYTES = 12

_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/gif", b"GIF87a", 0),
    ("image/gif", b"GIF89a", 0),
    ("image/webp", b"WEBP", 8),
    ("application/pdf", b"%PDF-", 0),
)
#: The types whose bytes are checked: a declared one of these must match its signature.
SNIFFED = frozenset(kind for kind, _, _ in _SIGNATURES)


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file show, if it is one livepages recognises."""
    for kind, signature, at in _SIGNATURES:
        if head[at : at + len(signature)] == signature and (at == 0 or head[:4] == b"RIFF"):
            return kind
    return None


def accepts(patterns: Sequence[str], content_type: str, name: str) -> bool:
    """Whether a file of ``content_type`` named ``name`` matches one of ``patterns``.

    The patterns are those of HTML's ``accept`` attribute: ``image/png``, ``image/*``
    or an extension such as ``.pdf``. No patterns accept everything.
    """
    if not patterns:
        return True
    kind = content_type.lower()
    for pattern in (p.strip().lower() for p in patterns):
        if pattern.startswith("."):
            if name.lower().endswith(pattern):
                return True
        elif pattern.endswith("/*"):
            if kind.startswith(pattern[:-1]) and len(kind) > len(pattern) - 1:
                return True
        elif kind == pattern:
            return True
    return False
