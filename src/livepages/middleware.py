"""ASGI middleware that every livepages app wears, and that any ASGI app may use.

- :class:`SecurityHeaders` adds the security headers to every HTTP response
  (error pages and 500s included) unless the app already set them.
- :class:`SessionCookie` writes the session cookie at the response start when a
  request changed its session (signed in, out, or started one).

Both only touch the ``http.response.start`` message and say so
(``passes_bodies_through = True``), so a live stream's body writes skip them
(``livepages.live.passes_bodies_through``). Their ``send`` wrappers are plain
functions that hand back the inner ``send``'s awaitable: no coroutine per message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livepages.csp import NONCE_SCOPE_KEY, ContentSecurityPolicy
from livepages.protocol import SESSION_SCOPE_KEY
from livepages.sessions.session import SessionManager

__all__ = ["SECURITY_HEADERS", "SecurityHeaders", "SessionCookie", "build_stack"]

#: The headers every response gets unless it sets its own. A livepages app replaces
#: this content-security-policy with its full policy and a nonce per response
#: (``livepages.csp``); a plain Starlette app wearing ``SecurityHeaders`` restricts
#: only framing, since it has no nonces on its scripts.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
)


_CSP = b"content-security-policy"


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` (or ``headers``) to every HTTP response.

    With a ``policy`` (a livepages app's), the content-security-policy is that
    policy, with the nonce of the response when it rendered a document.

    ``Starlette(middleware=[Middleware(SecurityHeaders)])`` gives a plain
    Starlette or FastAPI app the same headers as a livepages app.
    """

    #: Bodies pass unchanged: live streams may write them past this layer.
    passes_bodies_through = True

    def __init__(
        self,
        app: ASGIApp,
        headers: Iterable[tuple[bytes, bytes]] = SECURITY_HEADERS,
        policy: ContentSecurityPolicy | None = None,
    ):
        self.app = app
        self.policy = policy
        if policy is not None:
            headers = [h for h in headers if h[0] != _CSP]
            # Actions, streams and files have no nonce: their header is built once.
            self._no_nonce = policy.header(None)
        self.headers = tuple(headers)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the inner app's awaitable: no frame of its own
        # stays suspended for the life of each live stream.
        if scope["type"] != "http":
            return self.app(scope, receive, send)

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = self._add(message.get("headers", ()))
                if self.policy is not None and not any(name.lower() == _CSP for name, _ in headers):
                    # The nonce, if the response rendered a document that made one.
                    made = scope.get(NONCE_SCOPE_KEY)
                    value = self._no_nonce if made is None else self.policy.header(made)
                    headers.append((_CSP, value))
                message = {**message, "headers": headers}
            return send(message)

        return self.app(scope, receive, send_with_headers)

    def _add(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        out = list(headers)
        present = {name.lower() for name, _ in out}
        out += [header for header in self.headers if header[0] not in present]
        return out


class SessionCookie:
    """Set the session cookie at the response start when the request changed it.

    The session is loaded lazily during the request (``SESSION_SCOPE_KEY`` in the scope);
    whatever answers (a page, an action, an error page, a stream) the cookie goes
    out with its first message, so no response can lose a sign-in.
    """

    #: Bodies pass unchanged: live streams may write them past this layer.
    passes_bodies_through = True

    def __init__(self, app: ASGIApp, sessions: SessionManager) -> None:
        self.app = app
        self.sessions = sessions

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":  # as above: no frame of its own per request
            return self.app(scope, receive, send)

        def send_with_cookie(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                session = scope.get(SESSION_SCOPE_KEY)
                if session is not None and session.cookie is not None:
                    secure = scope.get("scheme") == "https"
                    cookie = (b"set-cookie", self.sessions.cookie_header(session, secure))
                    message = {**message, "headers": [*message.get("headers", ()), cookie]}
                    session.cookie = None
            return send(message)

        return self.app(scope, receive, send_with_cookie)


def build_stack(
    router: ASGIApp,
    user_middleware: Sequence[Middleware],
    handlers: Mapping[Any, Callable[..., Any]],
    sessions: SessionManager | None,
    policy: ContentSecurityPolicy | None = None,
) -> ASGIApp:
    """A livepages app's middleware stack around its router, outermost first:

    security headers (with ``policy``, the CSP of ``livepages.csp``), the session
    cookie (with sessions on), Starlette's ServerErrorMiddleware, the app's own
    middleware, Starlette's ExceptionMiddleware with the app's handlers. The first
    two sit outside all error handling, so 500s get them too. Unexpected errors are answered by the
    ExceptionMiddleware and not re-raised (Starlette's ServerErrorMiddleware
    answers and then re-raises, so the server would log each error twice).
    """
    layers = [
        Middleware(ServerErrorMiddleware),
        *user_middleware,
        Middleware(ExceptionMiddleware, handlers=dict(handlers)),
    ]
    stack = router
    for cls, args, kwargs in reversed(layers):
        stack = cls(stack, *args, **kwargs)
    if sessions is not None:
        stack = SessionCookie(stack, sessions)
    return SecurityHeaders(stack, policy=policy)
