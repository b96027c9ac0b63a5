"""The livepages target serves the harness's contract: GET /stream, POST /change."""

from __future__ import annotations

import pytest

from benchmarks.fanout.page import find_counter
from benchmarks.fanout.targets.livepages_app import create_app
from livepages.testing import Client


@pytest.mark.anyio
async def test_a_change_reaches_an_open_stream() -> None:
    app = create_app()
    async with Client(app) as client:
        stream = await client.stream("/stream").open()
        first = await stream.next_event()
        assert find_counter(first.elements.encode()) == 0
        response = await client.http.post("/change")
        assert response.status_code == 204
        second = await stream.next_event()
        assert find_counter(second.elements.encode()) == 1
        await stream.close()
