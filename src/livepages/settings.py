"""App settings: one frozen object, from code or from ``LIVEPAGES_*`` variables."""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["DATASTAR_CDN_URL", "Settings"]

#: The Datastar client that pages load unless told otherwise (pinned, v1.0.x).
DATASTAR_CDN_URL = "https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0.1/bundles/datastar.js"

KIB = 1024
MIB = 1024 * KIB


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an app can tune. ``Settings.from_env()`` reads ``LIVEPAGES_<NAME>``."""

    #: Development mode: tracebacks on error pages, templates and static files re-read.
    debug: bool = False
    #: Signs tab ids and CSRF tokens and encrypts cookies. Random per process if unset,
    #: which is fine for one process; give every process the same key when there are many.
    secret_key: str | None = None
    #: Earlier secret keys: cookies sealed with them still open (key rotation).
    previous_secret_keys: tuple[str, ...] = ()
    #: Where pages load Datastar from; ``datastar_file`` serves a local build instead.
    datastar_url: str = DATASTAR_CDN_URL
    datastar_file: str | None = None
    #: Other origins allowed to send actions, written ``scheme://host[:port]``; every
    #: action from any other site is refused (403), with or without sessions.
    trusted_origins: tuple[str, ...] = ()
    #: Send a Content-Security-Policy with a fresh nonce per response (``livepages.csp``,
    #: docs/security.md). ``False`` sends only ``frame-ancestors 'self'``, for apps that
    #: set their own policy.
    csp: bool = True
    #: More origins the page may connect to (``fetch``, ``EventSource``, ``WebSocket``,
    #: Datastar's ``@get`` to another site) besides its own: ``connect-src``.
    csp_connect_src: tuple[str, ...] = ()
    static_prefix: str = "/_static"
    lang: str = "en"
    title: str = "livepages"
    max_signals_size: int = 1 * MIB
    #: Deepest nesting of arrays and objects in JSON signals; deeper is a 400, before decoding.
    max_signals_depth: int = 64
    max_form_size: int = 1 * MIB
    #: The largest multipart body, and the largest file of a chunked upload.
    max_upload_size: int = 10 * MIB
    max_fields: int = 1000
    #: Files of a multipart form, and chunked uploads one tab holds at once.
    max_files: int = 10
    #: File types chunked uploads accept, as HTML's ``accept`` writes them (``image/*``,
    #: ``image/png``, ``.pdf``); none: any. See docs/uploads.md.
    upload_accept: tuple[str, ...] = ()
    #: Where chunked uploads are kept until an action saves them; by default a folder of
    #: the system's temporary folder named after the secret key, which the processes of
    #: one machine share. Processes on several machines need one shared folder here.
    upload_folder: str | None = None
    #: Seconds an upload lasts after its last byte, unless an action saves it.
    upload_ttl: float = 3600.0
    #: Bytes the browser sends per request of a chunked upload (what a dropped
    #: connection costs at most).
    upload_chunk_size: int = 1 * MIB
    #: Seconds a request body may stall between two pieces before it is a 408.
    read_timeout: float = 30.0
    #: Seconds a whole request body may take, however steadily it trickles, before it is a 408.
    body_timeout: float = 60.0
    #: Render a page that is personal only through its ``Session`` or ``Tab`` once per
    #: change for all its viewers, each viewer's own text filled into holes
    #: (``livepages.holes``, docs/live.md); ``False``: one render per viewer.
    personal_holes: bool = True
    #: Seconds between SSE comment heartbeats on idle live streams.
    heartbeat: float = 15.0
    #: Seconds a live stream may block on a write before it is dropped.
    write_timeout: float = 10.0
    #: The garbage collector's first threshold, raised to this when an app starts (and
    #: start-up's objects frozen, once per process): few collections while thousands of
    #: streams connect (``livepages.collector``). 0 leaves the collector alone.
    gc_threshold: int = 10_000
    #: Seconds a tab's server state outlives its stream, so a reconnect finds it.
    tab_grace: float = 60.0
    #: Put in front of every subject the app publishes and subscribes (its events and its
    #: internal ``_lp.*`` subjects), so apps sharing one broker never hear each other:
    #: ``"shop"`` makes ``chat.42`` travel as ``shop.chat.42``. Subject tokens only, no
    #: wildcards; "" for none.
    subject_prefix: str = ""
    #: A NATS server URL (or several, comma-separated, for a cluster): when set, the app
    #: runs on NATS instead of in process, so many processes can serve it. Its broker is a
    #: ``NATSBroker`` unless ``App(broker=...)`` is given, and ``App(sessions=True)``
    #: keeps sessions in JetStream KV (``NATSSessionStore``), both on one connection.
    #: Needs nats-py (``pip install 'livepages[nats]'``). See docs/scaling.md. A user and
    #: password, or a token, go in the URL: ``nats://user:password@host:4222``.
    nats_url: str | None = None
    #: A NATS ``.creds`` file (a user JWT and its NKey seed, as ``nsc`` writes them) that
    #: the connection authenticates with. Needs the ``nkeys`` package.
    nats_credentials: str | None = None
    #: TLS to NATS: the CA file (PEM) that signed the server's certificate, instead of
    #: the system's CAs; and a client certificate and its key (PEM files), for a server
    #: that verifies its clients. Any of them turns TLS on.
    nats_tls_ca: str | None = None
    nats_tls_cert: str | None = None
    nats_tls_key: str | None = None
    #: The name of the app's NATS connection, as NATS's monitoring shows it.
    nats_name: str = "livepages"
    #: Replicas of each JetStream KV bucket the app creates on NATS (sessions, tab state,
    #: the process registry); an existing bucket keeps its own: 1 for one nats-server, 3
    #: in a cluster of three or more, so the data outlive a node. 1 to 5, as NATS allows.
    nats_kv_replicas: int = 1
    #: Seconds within which the members of a process that died without a word (SIGKILL,
    #: a lost machine) leave every page's presence, when the app runs on NATS: each
    #: process re-writes its members every ``presence_ttl / 3`` s. See docs/presence.md.
    presence_ttl: float = 10.0
    #: Seconds a process's entry in the NATS process registry (its key fingerprints)
    #: outlives its last renewal, sent every third of it: how long a process that died
    #: without stopping still counts when another starts (``livepages.registry``).
    nats_registry_ttl: float = 30.0
    #: Refuse to start where running would break the app (``livepages.guards``): a
    #: second process of it on the in-process broker, on the same machine; a process on
    #: NATS whose secret keys and those of the running ones do not open each other's
    #: cookies, or that has no ``secret_key`` outside debug mode. ``False`` turns the
    #: checks off.
    startup_checks: bool = True
    #: Show the connection indicator, the in-flight indicator and the error notice in
    #: every page (``livepages.feedback``); ``False`` leaves feedback to the app.
    feedback: bool = True
    #: The id of this build of the app (a release tag, a commit): pages of another build
    #: reload when their stream reconnects here. Unset: a hash of the app's code and
    #: templates (``livepages.builds``).
    build_id: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, prefix: str = "LIVEPAGES_", **overrides: Any
    ) -> Settings:
        """Settings from environment variables (``LIVEPAGES_DEBUG=1``), then ``overrides``.

        A list (``previous_secret_keys``, ``trusted_origins``) is written comma-separated.
        """
        environ = os.environ if environ is None else environ
        names = set(cls.__struct_fields__)
        lists = {f.name for f in msgspec.structs.fields(cls) if typing.get_origin(f.type) is tuple}
        values: dict[str, Any] = {}
        for key, value in environ.items():
            name = key[len(prefix) :].lower()
            if key.startswith(prefix) and name in names:
                values[name] = _split(value) if name in lists else value
        values.update(overrides)
        return msgspec.convert(values, cls, strict=False)


def _split(value: str) -> tuple[str, ...]:
    """``"a, b"`` as ``("a", "b")``; empty parts are dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())
