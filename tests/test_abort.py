"""abort_connection: close a connection at once where the server's send allows it.

The real thing is tested against uvicorn in tests/test_server_matrix.py (the
server's file descriptors); these pin down what is looked for, and that any
other send is left alone.
"""

from __future__ import annotations

from starlette.types import Message

from livepages.abort import SERVER_SEND, abort_connection, record_server_send


class Transport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class Cycle:
    """Shaped like uvicorn's request cycle: ``send`` is its method, it holds the transport."""

    def __init__(self) -> None:
        self.transport = Transport()

    async def send(self, message: Message) -> None:
        """Never called here."""


def test_a_send_bound_to_a_transport_holder_aborts_it() -> None:
    cycle = Cycle()
    assert abort_connection(cycle.send)
    assert cycle.transport.aborted


def test_any_other_send_is_left_alone() -> None:
    async def wrapped(message: Message) -> None:
        """A middleware's send: no transport to reach."""

    assert not abort_connection(wrapped)


def test_the_outermost_layer_records_the_servers_send() -> None:
    outer, inner = Cycle(), Cycle()
    scope: dict[str, object] = {}
    record_server_send(scope, outer.send)
    record_server_send(scope, inner.send)  # a mounted app: the server's is already known
    assert scope[SERVER_SEND] == outer.send
