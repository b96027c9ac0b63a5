"""The limits every upload of an app is held to, checked on the server."""

from __future__ import annotations

from dataclasses import dataclass

from livepages.settings import Settings

__all__ = ["UploadLimits"]


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Largest file, files per tab at once, accepted types, and how long uploads last.

    Read from the app's settings: ``max_upload_size`` (bytes per file), ``max_files``
    (uploads one tab holds at once, finished or not), ``upload_accept`` (``accept``
    patterns such as ``image/*`` or ``.pdf``; none: any type), ``upload_ttl``
    (seconds an upload lasts after its last byte unless an action saves it).
    """

    max_size: int
    max_files: int
    accept: tuple[str, ...] = ()
    ttl: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        """The limits an app's settings set."""
        return cls(
            max_size=settings.max_upload_size,
            max_files=settings.max_files,
            accept=settings.upload_accept,
            ttl=settings.upload_ttl,
        )
