"""``Uploads``: an app's chunked, resumable uploads, from the file input to the action.

::

    <input type="file" multiple {{ upload("photos") }}>

    @action
    async def post(self, photos: list[Uploaded]) -> None: ...

The template helper gives the input the attributes that load the upload script
and bind its progress to the page's signals. The script starts an upload per file
(``POST /_upload``: name, size, type, checked against the limits), sends it in
chunks (``PATCH /_upload/<id>`` with ``Upload-Offset``), asks where the server
stands after a dropped connection (``HEAD``) and cancels with ``DELETE``. Every
request carries the page's tab id (uploads belong to the tab that started them)
and, except ``HEAD``, passes the app's CSRF and origin checks. When all files are
in, the signal ``photos`` holds their ids, and an action parameter named
``photos`` of type ``Uploaded`` or ``list[Uploaded]`` receives the files.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from livepages.datastar.signals import limited_receive, read_body
from livepages.errors import HTTPError, NotFound, ValidationError
from livepages.expressions import js_string
from livepages.injection import Context, Injector, Resolver
from livepages.inputs import read_input
from livepages.pages import root_path
from livepages.protocol import TAB_HEADER, UPLOAD_PATH, UPLOAD_SCRIPT
from livepages.settings import Settings
from livepages.uploads.folder import UploadFolder
from livepages.uploads.limits import UploadLimits
from livepages.uploads.uploaded import Uploaded
from livepages.uploads.wire import (
    NEW_UPLOAD_SIZE,
    OFFSET_HEADER,
    decode_new_upload,
    parse_offset,
    parse_upload_id,
    upload_ids,
)
from livepages.visitors import Visitors

__all__ = ["Uploads"]

SCRIPT = resources.files("livepages.uploads").joinpath("uploads.js").read_bytes()
#: A signal that can hold upload ids: sent to the server (no leading ``_``), plain name.
_SIGNAL = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
#: What the page shows of an upload before one starts (``$_uploads.<name>``).
_IDLE = "{state: 'idle', percent: 0, loaded: 0, total: 0, message: ''}"


class Uploads:
    """The upload endpoint, script, template helper and action parameters of one app."""

    def __init__(
        self,
        settings: Settings,
        key: bytes,
        visitors: Visitors,
        check: Callable[[Request], Awaitable[None]],
    ) -> None:
        limits = UploadLimits.from_settings(settings)
        if settings.upload_folder:
            self.folder = UploadFolder(Path(settings.upload_folder), limits)
        else:
            self.folder = UploadFolder(_default_folder(key), limits, private=True)
        self.settings = settings
        self.visitors = visitors
        #: The checks before every write (``App.check_request``: origin and CSRF).
        self.check = check
        self.script_version = hashlib.sha256(SCRIPT).hexdigest()[:16]

    def install(self, injector: Injector) -> None:
        """Teach ``injector`` the action parameters ``Uploaded`` and ``list[Uploaded]``."""
        injector.provide_named(Uploaded, lambda name: self._resolver(name, many=False))
        injector.provide_named(list[Uploaded], lambda name: self._resolver(name, many=True))

    def routes(self) -> list[BaseRoute]:
        """The endpoint and the script, at the app's root."""
        return [
            Route(UPLOAD_SCRIPT, self.script, methods=["GET", "HEAD"]),
            Route(UPLOAD_PATH, self.start, methods=["POST"]),
            Route(UPLOAD_PATH + "/{upload}", self.upload, methods=["HEAD", "PATCH", "DELETE"]),
        ]

    # -- the page -------------------------------------------------------------------

    def attributes(self, signal: str) -> Markup:
        """The attributes of a file input whose files upload into the signal ``signal``.

        ``signal`` then holds the ids of the finished files (what the action's
        parameter of the same name receives), and ``$_uploads.<signal>`` the progress:
        ``state`` (idle, uploading, retrying, done, error, cancelled), ``percent``,
        ``loaded``, ``total`` and ``message`` (why it failed).
        """
        if _SIGNAL.fullmatch(signal) is None:
            raise ValueError(f"{signal!r} cannot name an upload signal: letters, digits, _")
        script = js_string(f"{root_path.get()}{UPLOAD_SCRIPT}?v={self.script_version}")
        progress = f"$_uploads.{signal}"
        on_upload = f"${signal} = evt.detail.ids; " + "; ".join(
            f"{progress}.{key} = evt.detail.{key}"
            for key in ("state", "percent", "loaded", "total", "message")
        )
        attributes = {
            "data-lp-upload": signal,
            "data-lp-chunk": str(self.settings.upload_chunk_size),
            "data-signals__ifmissing": f"{{{signal}: [], _uploads: {{{signal}: {_IDLE}}}}}",
            "data-attr:data-lp-csrf": "$_csrf",
            "data-attr:data-lp-tab": "$_tab",
            # A module script element, not import(): under the default policy's
            # 'strict-dynamic' an element that a trusted script creates may load, while
            # Chromium refuses import() from Datastar's expressions once the page is
            # loaded again in the same tab. One module runs once, however many inputs.
            "data-init": (
                "document.head.append(Object.assign(document.createElement('script'), "
                f"{{type: 'module', src: {script}}}))"
            ),
            "data-on:lp-upload": on_upload,
        }
        accept = ",".join(self.settings.upload_accept)
        if accept:
            attributes["accept"] = accept
        pair = Markup('{}="{}"')  # Markup.format escapes both for the attribute
        return Markup(" ").join(pair.format(name, value) for name, value in attributes.items())

    async def script(self, request: Request) -> Response:
        """GET ``/_upload.js``: the browser side (immutable under its versioned URL)."""
        cache = "public, max-age=31536000, immutable"
        if request.query_params.get("v") != self.script_version:
            cache = "no-cache"
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": cache})

    # -- the endpoint ---------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        """POST ``/_upload``: a new upload (201 and its id), or why not (4xx, as text)."""
        try:
            await self.check(request)
            owner = await self._owner(request)
            raw = await read_body(request, NEW_UPLOAD_SIZE, read_timeout=self.settings.read_timeout)
            upload = self.folder.create(owner, decode_new_upload(raw))
        except HTTPError as exc:
            return _refusal(exc)
        return JSONResponse({"id": upload}, status_code=201)

    async def upload(self, request: Request) -> Response:
        """HEAD: where it stands. PATCH: its next bytes. DELETE: cancel it."""
        try:
            upload = parse_upload_id(request.path_params["upload"])
            if request.method != "HEAD":
                await self.check(request)
            owner = await self._owner(request)
            if request.method == "HEAD":
                received = self.folder.offset(owner, upload)
            elif request.method == "DELETE":
                self.folder.cancel(owner, upload)
                return Response(status_code=204)
            else:
                offset = parse_offset(request.headers.get(OFFSET_HEADER))
                received = await self.folder.append(owner, upload, offset, self._chunks(request))
        except HTTPError as exc:
            return _refusal(exc)
        except ClientDisconnect:  # what arrived is kept: the client asks where to resume
            return Response(status_code=400)
        headers = {OFFSET_HEADER: str(received), "Cache-Control": "no-store"}
        return Response(status_code=204, headers=headers)

    def _chunks(self, request: Request) -> AsyncIterator[bytes]:
        """The body, under the read timeouts; its size is the folder's to check."""
        receive = limited_receive(
            request.receive,
            self.settings.max_upload_size,
            read_timeout=self.settings.read_timeout,
            body_timeout=self.settings.body_timeout,
        )
        return Request(request.scope, receive).stream()

    async def _owner(self, request: Request) -> str:
        """The tab the request comes from (400 without a valid tab id)."""
        return await self.visitors.tab_id(request, request.headers.get(TAB_HEADER))

    # -- the action -----------------------------------------------------------------

    def _resolver(self, name: str, *, many: bool) -> Resolver:
        async def resolve(ctx: Context) -> Uploaded | list[Uploaded]:
            values = await read_input(ctx.request, self.settings, dict)
            found = await self._finished(ctx.request, name, values.get(name, []))
            if many:
                return found
            if len(found) != 1:
                raise ValidationError({name: "choose one file" if found else "is required"})
            return found[0]

        return resolve

    async def _finished(self, request: Request, name: str, value: Any) -> list[Uploaded]:
        ids = upload_ids(value, name)
        if not ids:
            return []
        owner = await self._owner(request)
        found = []
        for upload in ids:
            try:
                done = self.folder.finished(owner, upload)
            except NotFound:
                raise ValidationError({name: "was not uploaded: choose the file again"}) from None
            if done is None:
                raise ValidationError({name: "is still uploading"})
            found.append(done)
        return found


def _refusal(exc: HTTPError) -> Response:
    """An error as the script reads it: the status, and the message as plain text."""
    return PlainTextResponse(exc.message, status_code=exc.status_code, headers=exc.headers)


def _default_folder(key: bytes) -> Path:
    """``<tmp>/livepages-uploads-<hash of the key>``: shared by the processes of one
    machine that share the secret key, and kept across their restarts."""
    name = "livepages-uploads-" + hashlib.sha256(key).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / name
