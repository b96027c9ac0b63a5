"""A clock and an echo box built with the bare SDK on plain Starlette."""

from __future__ import annotations

import asyncio
import time
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from livepages.datastar import (
    DatastarResponse,
    ServerSentEventGenerator,
    patch_elements,
    read_signals,
)

DATASTAR_JS = "https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0.1/bundles/datastar.js"

PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>livepages SDK demo</title>
<script type="module" src="{DATASTAR_JS}"></script></head>
<body data-signals="{{text: ''}}">
  <h1>livepages SDK demo</h1>
  <p id="clock" data-init="@get('clock')">connecting…</p>
  <input data-bind:text placeholder="type something">
  <button data-on:click="@post('echo')">Echo</button>
  <p id="echo"></p>
</body></html>"""


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def clock(request: Request) -> DatastarResponse:
    async def tick(sse: ServerSentEventGenerator) -> None:
        while True:
            await sse.patch_elements(f'<p id="clock">Server time: {time.strftime("%H:%M:%S")}</p>')
            await asyncio.sleep(1)

    return DatastarResponse(tick)


async def echo(request: Request) -> DatastarResponse:
    signals = await read_signals(request)
    text = escape(str(signals.get("text", "")))
    return DatastarResponse(patch_elements(f'<p id="echo">You said: {text}</p>'))


app = Starlette(
    routes=[
        Route("/", index),
        Route("/clock", clock),
        Route("/echo", echo, methods=["POST"]),
    ]
)
