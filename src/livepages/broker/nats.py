"""The NATS broker: the broker interface on core NATS pub/sub, for many processes.

Events are core NATS messages, at most once: a render carries the whole state, so a lost
message is repaired by the re-render that follows a reconnect. Each livepages subscription
is one NATS subscription; nats-py reads its messages in one task per subscription, and the
broker calls the subscriber's callback inline from that task, so messages from one
publisher reach each subscriber in the order they were published.

**A publish while NATS is away fails fast** with ``BrokerUnavailable``: the client keeps no
publish buffer during a reconnect (``pending_size=0``), so an action that publishes gets an
error at once (the app answers 503) instead of hanging or of queueing events that may never
be sent. When the connection comes back the reconnect listeners run and every view
re-renders; so they do when nats-py reports that a subscription was too slow and the client
dropped messages for it.

nats-py is an optional dependency (``pip install livepages[nats]``); it is imported when a
broker is made, so importing this module without it fails with a message saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from livepages.broker.base import (
    BrokerClosed,
    BrokerError,
    BrokerUnavailable,
    Callback,
    Message,
    QueueSubscription,
    ReconnectListener,
    Subscription,
    SubscriptionClosed,
)
from livepages.broker.queue import MessageQueue, QueueReader
from livepages.broker.subjects import validate_pattern, validate_subject

try:
    import nats.errors
    from nats.aio.client import Client as _Client
except ImportError as exc:  # pragma: no cover - the test environment has nats-py
    raise ImportError("the NATS broker needs nats-py: pip install 'livepages[nats]'") from exc

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as _NATSSubscription

__all__ = [
    "BrokerUnavailable",
    "NATSBroker",
    "NATSOptions",
    "NATSRefused",
    "open_connection",
    "redact",
]

logger = logging.getLogger("livepages.broker")


@dataclass(frozen=True)
class NATSOptions:
    """How to reach NATS.

    ``servers``: one URL or several (a cluster). ``name`` labels the connection in NATS's
    monitoring. ``credentials``: a ``.creds`` file (JWT and NKey). ``tls``: a client TLS
    context (``tls://`` URLs need one or use the default). ``reconnect_wait``: seconds
    between attempts to reach the same server again. ``timeout``: seconds to connect and to
    wait for the server to confirm a subscription. ``pending_limit``: how many messages
    nats-py holds for one subscription whose callback has not run yet; past it, it drops
    them and reports a slow consumer (and every view re-renders).
    """

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    name: str | None = None
    credentials: Path | None = None
    tls: ssl.SSLContext | None = None
    reconnect_wait: float = 2.0
    timeout: float = 5.0
    pending_limit: int = 65_536


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class _Subscription:
    """One livepages subscription on its own NATS subscription.

    ``subscribe`` is synchronous while nats-py's is not: the NATS subscription is made by
    a task, and ``ready()`` awaits that task and a flush (the server has the SUB).
    """

    def __init__(self, broker: NATSBroker, pattern: str) -> None:
        self._broker: NATSBroker | None = broker  # None once unsubscribed
        self.pattern = pattern
        self._nats: _NATSSubscription | None = None
        self._made = asyncio.get_running_loop().create_task(self._subscribe(broker))

    async def _subscribe(self, broker: NATSBroker) -> None:
        self._nats = await broker._client().subscribe(
            self.pattern, cb=self._receive, pending_msgs_limit=broker.options.pending_limit
        )
        if self._broker is None:  # unsubscribed while the SUB was on its way
            await self._drop_nats()
            return
        await broker._flush()

    async def _receive(self, msg: Msg) -> None:
        """nats-py's handler: turn the NATS message into a ``Message`` and hand it over."""
        broker = self._broker
        if broker is None:  # unsubscribed: messages already read are not delivered
            return
        message = Message(msg.subject, msg.data, dict(msg.headers) if msg.headers else None)
        try:
            broker._delivered += self.deliver(message)
        except Exception:
            broker._delivered += 1
            logger.exception(
                "a subscriber to %r failed on a message to %r", self.pattern, message.subject
            )

    def deliver(self, message: Message) -> int:
        """Hand ``message`` over; return how many messages were (0 or 1)."""
        raise NotImplementedError

    @property
    def pending_messages(self) -> int:
        """Messages nats-py has read for this subscription but not handed over yet."""
        return self._nats.pending_msgs if self._nats is not None else 0

    async def ready(self) -> None:
        broker = self._broker
        if broker is None:
            raise SubscriptionClosed(f"the subscription to {self.pattern!r} is closed")
        broker._check_connected()
        try:
            await asyncio.shield(self._made)
        except BrokerError:
            raise
        except Exception as exc:
            raise BrokerError(f"could not subscribe to {self.pattern!r}: {exc!r}") from exc
        if self._broker is None:
            raise SubscriptionClosed(f"the subscription to {self.pattern!r} is closed")

    def unsubscribe(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        broker._remove(self)
        if self._nats is not None:  # else the subscribing task drops it once made
            broker._spawn(self._drop_nats())

    async def _drop_nats(self) -> None:
        if self._nats is not None:
            # Closed or draining connection: the SUB is gone with it.
            with contextlib.suppress(nats.errors.Error):
                await self._nats.unsubscribe()


class _CallbackSubscription(_Subscription):
    def __init__(self, broker: NATSBroker, pattern: str, callback: Callback) -> None:
        super().__init__(broker, pattern)
        self.callback = callback

    def __repr__(self) -> str:
        return f"<Subscription {self.pattern!r}>"

    def deliver(self, message: Message) -> int:
        self.callback(message)
        return 1


class _QueueSubscription(QueueReader, _Subscription):
    def __init__(self, broker: NATSBroker, pattern: str, max_pending: int) -> None:
        self.queue = MessageQueue(max_pending)  # first: a bad max_pending subscribes nothing
        super().__init__(broker, pattern)

    def deliver(self, message: Message) -> int:
        if self.queue.put(message):
            return 1
        if self._broker is not None:
            self._broker._dropped += 1
        return 0

    def _check_open(self) -> None:
        if self._broker is None:
            raise SubscriptionClosed(f"the subscription to {self.pattern!r} is closed")

    def unsubscribe(self) -> None:
        super().unsubscribe()
        self.queue.close()


_S = TypeVar("_S", bound=_Subscription)


class NATSBroker:
    """A ``Broker`` on core NATS (see ``livepages.broker.base`` for the contract).

    ``NATSBroker("nats://nats:4222", name="shop-1")``; the keyword arguments are those of
    ``NATSOptions``. Also an async context manager that starts and closes it.
    """

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        name: str | None = None,
        credentials: str | Path | None = None,
        tls: ssl.SSLContext | None = None,
        reconnect_wait: float = 2.0,
        timeout: float = 5.0,
        pending_limit: int = 65_536,
    ) -> None:
        urls = (servers,) if isinstance(servers, str) else tuple(servers)
        if not urls:
            raise ValueError("NATSBroker needs at least one server URL")
        self.options = NATSOptions(
            servers=urls,
            name=name,
            credentials=Path(credentials) if credentials is not None else None,
            tls=tls,
            reconnect_wait=reconnect_wait,
            timeout=timeout,
            pending_limit=pending_limit,
        )
        self._nc: _Client | None = None
        self._state = _State.NEW
        self._starting: asyncio.Future[None] | None = None
        self._subscriptions: dict[_Subscription, None] = {}
        self._listeners: list[ReconnectListener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._slow_notice: asyncio.Handle | None = None
        self._published = 0
        self._delivered = 0
        self._dropped = 0

    @classmethod
    def from_options(cls, options: NATSOptions) -> NATSBroker:
        """A broker on ``options`` (``livepages.backends.nats_options`` makes them from
        the app's settings)."""
        return cls(
            options.servers,
            name=options.name,
            credentials=options.credentials,
            tls=options.tls,
            reconnect_wait=options.reconnect_wait,
            timeout=options.timeout,
            pending_limit=options.pending_limit,
        )

    def __repr__(self) -> str:
        servers = ",".join(map(redact, self.options.servers))
        return f"<NATSBroker {servers} {self._state.value} subscriptions={self.subscriptions}>"

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are active."""
        return len(self._subscriptions)

    @property
    def published(self) -> int:
        return self._published

    @property
    def delivered(self) -> int:
        return self._delivered

    @property
    def dropped(self) -> int:
        """Messages dropped by full queue subscriptions, or by nats-py for a slow subscriber."""
        return self._dropped

    @property
    def client(self) -> _Client:
        """The nats-py client of the running broker, to share its one connection (the
        session store does); ``BrokerClosed`` before ``start()`` and after ``close()``.

        The broker owns it: users must not close it, and it keeps the broker's settings
        (no publish buffer while reconnecting, reconnect forever).
        """
        return self._client()

    @property
    def connected(self) -> bool:
        """Whether the broker is running and connected to a server now."""
        return self._nc is not None and self._nc.is_connected

    # -- start and close ------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; concurrent callers share the one attempt, and a failed one may be retried.

        ``BrokerError`` if no server answers within the timeout.
        """
        if self._state is _State.CLOSED:
            raise BrokerClosed("a closed broker cannot be started again")
        if self._state is _State.RUNNING:
            return
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            try:
                self._nc = await self._connect()
            except BaseException as exc:
                # Waiting callers get a BrokerError, whatever ended this attempt (a
                # cancelled one included); the next start() tries again.
                failure = _cannot_connect(self, exc)
                self._starting.set_exception(failure)
                self._starting.exception()  # retrieved: no "never retrieved" warning
                self._starting = None
                if isinstance(exc, Exception):
                    raise failure from exc
                raise
            self._state = _State.RUNNING
            self._starting.set_result(None)
            self._starting = None
            return
        await asyncio.shield(self._starting)

    async def _connect(self) -> _Client:
        return await open_connection(
            self.options,
            pending_size=0,  # no buffer while disconnected: a publish fails fast
            error_cb=self._error,
            reconnected_cb=self._reconnected,
            disconnected_cb=self._disconnected,
        )

    async def close(self) -> None:
        """End every subscription (queue iterators stop) and close the connection."""
        self._state = _State.CLOSED
        for subscription in list(self._subscriptions):
            subscription.unsubscribe()
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            # Not drain(): subscriptions are gone already, and draining waits for
            # their handlers; a plain close flushes what was published first.
            # NATS away: what is pending is lost, as at most once allows.
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                await nc.flush(timeout=1)
            await nc.close()
        for task in list(self._tasks):
            task.cancel()
        if self._slow_notice is not None:
            self._slow_notice.cancel()

    async def __aenter__(self) -> NATSBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- reconnects -----------------------------------------------------------------------

    def add_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Call ``listener()`` after each reconnect, and after nats-py dropped messages."""
        self._listeners.append(listener)

    def remove_reconnect_listener(self, listener: ReconnectListener) -> None:
        """Stop calling ``listener``; harmless if it is not registered."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        self._slow_notice = None
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                logger.exception("reconnect listener %r failed", listener)

    async def _reconnected(self) -> None:
        logger.info("reconnected to NATS at %s", self._client_url())
        self._notify()

    async def _disconnected(self) -> None:
        if self._state is _State.RUNNING:
            logger.warning("lost the connection to NATS; publishing fails until it is back")

    async def _error(self, error: Exception) -> None:
        if isinstance(error, nats.errors.SlowConsumerError):
            self._dropped += 1
            # One re-render for a burst of drops, not one per dropped message.
            if self._slow_notice is None:
                logger.warning("NATS dropped messages for a slow subscriber to %r", error.subject)
                self._slow_notice = asyncio.get_running_loop().call_soon(self._notify)
            return
        logger.warning("NATS: %r", error)

    def _client_url(self) -> str:
        url = self._nc.connected_url if self._nc is not None else None
        return redact(url.geturl()) if url is not None else "?"

    async def force_reconnect(self) -> None:
        """Drop the connection and connect again (to the next server of the pool).

        For tests, and to move off a server: subscriptions are made again on the new
        connection, then the reconnect listeners run.
        """
        await self._check_connected().force_reconnect()

    # -- publish and subscribe ------------------------------------------------------------

    def _client(self) -> _Client:
        if self._state is not _State.RUNNING or self._nc is None:
            closed = self._state is _State.CLOSED
            state = "closed" if closed else "not started (call start() first)"
            raise BrokerClosed(f"the broker is {state}")
        return self._nc

    def _check_connected(self) -> _Client:
        nc = self._client()
        if not nc.is_connected:
            raise BrokerUnavailable(
                "NATS is unreachable (reconnecting); the event was not sent, try again shortly"
            )
        return nc

    async def publish(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``data`` to ``subject``; ``BrokerUnavailable`` at once while NATS is away."""
        validate_subject(subject)
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        nc = self._check_connected()
        try:
            await nc.publish(subject, data, headers=dict(headers) if headers else None)
        except (nats.errors.OutboundBufferLimitError, nats.errors.ConnectionReconnectingError):
            raise BrokerUnavailable(
                "NATS is unreachable (reconnecting); the event was not sent, try again shortly"
            ) from None
        except nats.errors.Error as exc:
            raise BrokerError(f"publishing to {subject!r} failed: {exc!r}") from exc
        self._published += 1

    def subscribe(self, pattern: str, callback: Callback) -> Subscription:
        """Call ``callback(message)`` from nats-py's task for ``pattern``, in order."""
        validate_pattern(pattern)
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        self._client()
        return self._file(_CallbackSubscription(self, pattern, callback))

    def subscribe_queue(self, pattern: str, *, max_pending: int = 1024) -> QueueSubscription:
        """Buffer up to ``max_pending`` messages matching ``pattern`` for ``async for``."""
        validate_pattern(pattern)
        if max_pending < 1:  # before _client(): a bad argument is a ValueError, up or down
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self._client()
        return self._file(_QueueSubscription(self, pattern, max_pending))

    async def flush(self) -> None:
        """Wait until the server has everything sent so far and what it sent back to this
        process has reached the subscribers: tests use it to wait for deliveries."""
        await self._flush()
        # nats-py signals no "handled" event for a callback subscription: poll.
        while any(s.pending_messages for s in self._subscriptions):  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    async def _flush(self) -> None:
        nc = self._check_connected()
        try:
            # nats-py writes its PING straight to the socket, ahead of the commands still
            # queued for its flusher (a SUB, a PUB): so first wait until those are written,
            # else the PONG could come back before the server has seen them.
            await asyncio.wait_for(nc._flush_pending(force_flush=True), self.options.timeout)
            await nc.flush(timeout=max(1, round(self.options.timeout)))
        except (TimeoutError, nats.errors.Error) as exc:
            raise BrokerUnavailable(f"NATS did not answer a flush: {exc!r}") from exc

    def _file(self, subscription: _S) -> _S:
        self._subscriptions[subscription] = None
        self._track(subscription._made)
        return subscription

    def _remove(self, subscription: _Subscription) -> None:
        self._subscriptions.pop(subscription, None)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        """Run ``work`` in the background, kept alive until it ends."""
        self._track(asyncio.get_running_loop().create_task(work))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Raised again by ready(); logged here in case nobody awaits it.
            logger.debug("a NATS subscription task failed", exc_info=task.exception())


def _cannot_connect(broker: NATSBroker, exc: BaseException) -> BrokerError:
    servers = ", ".join(map(redact, broker.options.servers))
    return BrokerError(f"cannot connect to NATS at {servers}: {str(exc) or repr(exc)}")


# -- connecting ---------------------------------------------------------------------------


def redact(url: str) -> str:
    """``url`` without its password or token, for messages and logs."""
    scheme, found, rest = url.partition("://")
    if not found or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    shown = f"{user}:***" if has_password else "***"
    return f"{scheme}://{shown}@{host}"


class NATSRefused(ConnectionError):
    """NATS refused this client for good: TLS or credentials. Trying again cannot help."""


ErrorListener = Callable[[Exception], Awaitable[None]]
Listener = Callable[[], Awaitable[None]]


async def open_connection(
    options: NATSOptions,
    *,
    error_cb: ErrorListener,
    reconnected_cb: Listener | None = None,
    disconnected_cb: Listener | None = None,
    pending_size: int = 2 * 1024 * 1024,
) -> _Client:
    """A nats-py client connected with ``options``, which reconnects for as long as it runs.

    The first connection is bounded: :class:`NATSRefused` as soon as a server refuses
    the client's TLS or credentials (nats-py would retry them forever), ``TimeoutError``
    naming the last error if none answers within ``options.timeout``. The callbacks
    hear only what happens once connected. ``pending_size`` is how many bytes nats-py
    buffers while reconnecting (0: a publish fails at once).
    """
    first = _FirstConnect(error_cb)
    nc = _Client()
    connecting = asyncio.ensure_future(
        nc.connect(
            servers=list(options.servers),
            name=options.name,
            user_credentials=str(options.credentials) if options.credentials else None,
            tls=options.tls,
            # Typed int, used as seconds for asyncio: a float works.
            connect_timeout=options.timeout,  # type: ignore[arg-type]
            reconnect_time_wait=options.reconnect_wait,  # type: ignore[arg-type]
            max_reconnect_attempts=-1,  # a web app keeps trying for as long as it runs
            allow_reconnect=True,
            pending_size=pending_size,
            reconnected_cb=reconnected_cb,
            disconnected_cb=disconnected_cb,
            error_cb=first.error,
        )
    )
    try:
        # nats-py retries a first connection as long as it retries a lost one
        # (forever): the timeout bounds the first one alone.
        either: list[asyncio.Future[Any]] = [connecting, first.refused]
        await asyncio.wait(either, timeout=options.timeout, return_when="FIRST_COMPLETED")
        if not connecting.done():
            connecting.cancel()
            raise first.failure(options.timeout)
        connecting.result()
    except BaseException:
        connecting.cancel()
        await nc.close()
        raise
    first.connected = True
    return nc


class _FirstConnect:
    """Watches nats-py's errors while it makes the first connection."""

    def __init__(self, error_cb: ErrorListener) -> None:
        self._error_cb = error_cb
        self.connected = False
        self.last: Exception | None = None
        # Set by the first refusal: the errors that follow (the server hanging up) say less.
        self.refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def error(self, error: Exception) -> None:
        if self.connected:
            await self._error_cb(error)
            return
        self.last = error  # reported by failure(), not logged once per retry
        reason = _refusal(error)
        if reason is not None and not self.refused.done():
            self.refused.set_result(reason)

    def failure(self, timeout: float) -> Exception:
        """What to raise once the first connection gave up."""
        if self.refused.done():
            return NATSRefused(self.refused.result())
        last = f" (last error: {self.last!r})" if self.last is not None else ""
        return TimeoutError(f"no NATS server answered within {timeout:g} s{last}")


def _refusal(error: Exception) -> str | None:
    """Why ``error`` means this client will never be let in, or ``None`` if it might."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"the server's TLS certificate is not trusted ({error.verify_message}): "
            "give the CA that signed it (Settings.nats_tls_ca, or NATSBroker(tls=...))"
        )
    if isinstance(error, ssl.SSLError):
        if "CERTIFICATE_REQUIRED" in str(error):
            return (
                "the server requires a client certificate "
                "(Settings.nats_tls_cert and nats_tls_key, or NATSBroker(tls=...))"
            )
        return f"TLS failed: {error}"
    if isinstance(error, nats.errors.AuthorizationError) or (
        isinstance(error, nats.errors.Error) and "authorization violation" in str(error).lower()
    ):
        return (
            "the server refused this client's credentials (Authorization Violation): check "
            "the credentials file (Settings.nats_credentials) or the user, password or "
            "token in the URL"
        )
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot read {error.filename}: {error.strerror}"
    return None
