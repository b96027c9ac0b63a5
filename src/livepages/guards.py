"""Start-up guards: an app refuses to start where running it would break it.

Many processes serve one app only if they share a broker and a secret. Two mistakes
make such a deployment misbehave quietly (events and sign-outs reach only some
visitors, cookies open on only some processes), so the app refuses to start instead,
raising :class:`StartupRefused` with a message that says why and what to do:

- **The in-process broker in several processes** (``livepages.process_lock``): an app
  on the ``MemoryBroker`` takes a lock file at start-up, so a second process of the
  same app on the same machine (``--workers 4``, two ``python -m``) refuses to start.
  Processes on other machines cannot be seen; they are the deployment's to avoid.
- **Processes on NATS whose secret keys do not open each other's cookies**
  (``livepages.registry``): each registers a fingerprint of its keys in a KV bucket,
  and a process whose keys and those of the running processes do not open each
  other's cookies refuses to start. So does a process on NATS without
  ``Settings.secret_key`` outside debug mode: its random key would be its own.

``Settings.startup_checks = False`` (``LIVEPAGES_STARTUP_CHECKS=0``) turns both off,
for a deployment that knows better (two independent copies of one app, say).
``livepages.startup`` picks an app's guards.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Guard", "StartupRefused"]


class StartupRefused(RuntimeError):
    """The app will not start here: the message says why, and what to do about it."""


class Guard(Protocol):
    """A check an app passes at start-up and keeps passing while it runs."""

    async def start(self) -> None:
        """Check, and hold what the check needs (a lock, a registration);
        :class:`StartupRefused` if the app must not start."""
        ...

    async def stop(self) -> None:
        """Let go of what ``start`` took. Idempotent."""
        ...
