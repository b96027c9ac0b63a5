"""Chunked, resumable, cancellable uploads with progress (docs/uploads.md)."""

from livepages.uploads.folder import UnsupportedType, UploadFolder
from livepages.uploads.limits import UploadLimits
from livepages.uploads.service import Uploads
from livepages.uploads.uploaded import Uploaded

__all__ = ["UnsupportedType", "UploadFolder", "UploadLimits", "Uploaded", "Uploads"]
