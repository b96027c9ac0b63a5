"""One secret, a derived key per purpose, and rotation.

Session cookies, CSRF tokens and tab ids are each keyed by
``HMAC-SHA256(secret, purpose)``, so one ``Settings.secret_key`` serves them all
and a key of one purpose says nothing about another. Keys derived from
``Settings.previous_secret_keys`` still verify (but never sign), so rotating the
secret does not void the pages already open.

Where the secret comes from when ``secret_key`` is not set:

- in development (``debug=True``): a random secret kept in ``.livepages/secret``
  under the working directory, created on first use, so a reload keeps users
  signed in and open pages connected;
- otherwise: a random secret per process, with a warning at start-up, because
  every restart then signs everyone out and reloads every open page, and a second
  process would refuse the first one's cookies, tokens and tab ids.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from livepages.paths import PRIVATE_FOLDER, private_folder

__all__ = ["DEV_SECRET_FILE", "FINGERPRINT_LABEL", "Keys"]

log = logging.getLogger("livepages")

#: Where a development secret persists, relative to the working directory.
DEV_SECRET_FILE = Path(PRIVATE_FOLDER) / "secret"
#: What a secret's fingerprint is the HMAC of (``Keys.fingerprints``).
FINGERPRINT_LABEL = "livepages key fingerprint"

_MISSING_KEY_WARNING = (
    "Settings.secret_key is not set: this process uses a random secret. Every restart "
    "signs every user out and makes every open page reload, and a second process "
    "refuses this one's cookies, CSRF tokens and tab ids. Set LIVEPAGES_SECRET_KEY "
    "(the same value on every process) in production."
)


class Keys:
    """The app's secret and the keys derived from it."""

    def __init__(
        self,
        secret_key: str | None,
        previous: tuple[str, ...] = (),
        *,
        debug: bool = False,
        folder: Path | None = None,
    ) -> None:
        #: Whether the secret is a random one of this process (warned about at start-up).
        self.ephemeral = secret_key is None and not debug
        if secret_key is not None:
            self._secret = _stretch(secret_key)
        elif debug:
            self._secret = _stretch(dev_secret(folder or Path.cwd()))
        else:
            self._secret = secrets.token_bytes(32)
        self._previous = [_stretch(old) for old in previous]

    def derive(self, purpose: str) -> bytes:
        """The 256-bit key for ``purpose``: it signs and seals."""
        return _derive(self._secret, purpose)

    def all(self, purpose: str) -> list[bytes]:
        """The current key for ``purpose``, then those of the previous secrets (verify only)."""
        return [self.derive(purpose), *(_derive(old, purpose) for old in self._previous)]

    def fingerprints(self) -> list[str]:
        """The fingerprints of the current secret, then of the previous ones.

        Each is the HMAC of a fixed label under the secret (hex, 128 bits): equal for
        equal secrets, and safe to show other processes, since it gives away nothing of
        the secret nor of the keys derived for other purposes.
        """
        return [key[:16].hex() for key in self.all(FINGERPRINT_LABEL)]

    def warn_if_ephemeral(self) -> None:
        """Log, once per start-up, what a per-process secret breaks."""
        if self.ephemeral:
            log.warning(_MISSING_KEY_WARNING)


def dev_secret(folder: Path) -> str:
    """The development secret kept under ``folder``, created on first use.

    The folder gets a ``.gitignore`` of ``*`` so the secret is never committed.
    Two processes starting at once agree on one secret.
    """
    path = private_folder(folder) / DEV_SECRET_FILE.name
    if not path.exists():
        # Written whole under another name, then linked: a reader never sees it half
        # written, and of two processes starting at once the first link wins.
        draft = path.with_name(f"secret.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(secrets.token_urlsafe(32) + "\n")
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _stretch(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _derive(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
