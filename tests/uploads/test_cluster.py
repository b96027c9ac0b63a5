"""Uploads on two processes on NATS that share an upload folder: any chunk, any process.

What docs/uploads.md says is supported across processes: one folder that every
process sees. A load balancer may send each request of an upload to another process.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cluster import AppProcess, app_processes
from tests.fixtures.servers import tab_of


@pytest.fixture
def pair(nats_server: str, tmp_path: Path) -> Iterator[list[AppProcess]]:
    env = {"LIVEPAGES_UPLOAD_FOLDER": str(tmp_path / "shared")}
    key = secrets.token_urlsafe(32)
    with app_processes(2, "tests.upload_app", nats_server, key, env=env) as processes:
        yield processes


def test_each_chunk_may_reach_another_process(pair: list[AppProcess]) -> None:
    a, b = pair
    data = os.urandom(300_000)
    with httpx.Client() as http:
        tab = tab_of(http.get(a.url + "/").text)
        headers = {"X-LP-Tab": tab}
        start = {"name": "data.bin", "size": len(data), "type": ""}
        upload = http.post(b.url + "/_upload", json=start, headers=headers).json()["id"]
        offset = 0
        for turn, process in enumerate([a, b, a]):
            chunk = data[offset : offset + 100_000]
            sent = http.patch(
                f"{process.url}/_upload/{upload}",
                content=chunk,
                headers={**headers, "Upload-Offset": str(offset)},
            )
            assert sent.status_code == 204, (turn, sent.text)
            offset = int(sent.headers["Upload-Offset"])
        assert http.head(f"{b.url}/_upload/{upload}", headers=headers).headers[
            "Upload-Offset"
        ] == str(len(data))
        # The action took the finished file (an unfinished or unknown one is a 422)
        # and discarded it: no process knows the upload any more.
        kept = http.post(f"{a.url}/_action/keep", json={"photos": [upload]}, headers=headers)
        assert kept.status_code == 204, kept.text
        for process in (a, b):
            assert http.head(f"{process.url}/_upload/{upload}", headers=headers).status_code == 404
        again = http.post(f"{b.url}/_action/keep", json={"photos": [upload]}, headers=headers)
        assert again.status_code == 422
