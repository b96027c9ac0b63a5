"""Game of Life: a 50x50 board stepped by the server at 5 Hz and streamed to every viewer.

A task started by the app's lifespan steps the board five times a second and
publishes ``BoardChanged`` after each step; the page subscribes with ``@on`` on
its class and re-renders. The board looks the same to everyone, so all viewers
share one view: each step costs one render and one encoded patch, however many
people watch. Clicking a cell paints it (an action with the cell's
coordinates); pause, resume, clear and randomize are actions too.

Each frame is a full 2,500-cell board, and the page shows what compression
does to it: the app keeps one reference gzip context, configured like the live
streams' own, and feeds it every frame that the page renders, as a viewer's
stream would be fed. A shared render cannot see any one viewer's compressor,
so this is the figure a viewer who saw every frame would get.

``create_app(settings, rate=..., seed=...)`` builds a fresh app (tests pick a
seed and a rate); ``app`` is the one ``make run`` serves.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from examples.game_of_life.life import Board
from livepages import App, BadRequest, Page, Settings, action
from livepages.compression import CompressionSettings, GzipCompressor, StreamCompressor
from livepages.datastar import patch_elements
from livepages.events import Event, on

__all__ = [
    "RATE",
    "SIZE",
    "STALE_STEPS",
    "BoardChanged",
    "CompressionMeter",
    "Game",
    "Paint",
    "app",
    "create_app",
]

TEMPLATES = Path(__file__).parent / "templates"
SIZE = 50
#: Steps per second.
RATE = 5.0
#: Steps a board may only repeat itself (still, or blinking) before it is reseeded.
STALE_STEPS = 25
HEAD = """<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; }
  #board { display: grid; grid-template-columns: repeat(50, 10px); gap: 1px;
           width: max-content; background: #ddd; border: 1px solid #ddd; cursor: crosshair; }
  #board i { display: block; width: 10px; height: 10px; background: #fff; }
  #board i.on { background: #222; }
  .controls { display: flex; gap: .5rem; margin: 1rem 0; }
</style>"""


@dataclass
class BoardChanged(Event, subject="life"):
    """The board moved on (a step, a paint, a clear): every viewer re-renders."""

    generation: int


@dataclass
class Paint:
    """The signals of a click on the board: which cell."""

    x: int
    y: int


class CompressionMeter:
    """One reference compression context, fed every frame, as a viewer's stream would be."""

    def __init__(self, compressor: StreamCompressor) -> None:
        self._compressor = compressor
        self.frames = 0
        self.raw = 0
        self.compressed = 0

    def feed(self, frame: bytes) -> None:
        """Compress the next frame; ``raw`` and ``compressed`` describe it."""
        self.frames += 1
        self.raw = len(frame)
        self.compressed = len(self._compressor.compress(frame))

    @property
    def ratio(self) -> float:
        """How many times smaller the last frame went out (0 before the first)."""
        return self.raw / self.compressed if self.compressed else 0.0

    def describe(self) -> str:
        """``raw 21.4 KB → gzip 312 B (70x)``, for the page."""
        if not self.frames:
            return "no frame yet"
        return (
            f"raw {self.raw / 1000:.1f} KB → gzip {self.compressed:,} B "
            f"({self.ratio:.0f}x, frame {self.frames})"
        )


class Game:
    """The board, whether it runs, and the rendered board of its latest state."""

    def __init__(self, meter: CompressionMeter, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.board = Board(SIZE)
        self.board.randomize(self.rng)
        self.paused = False
        self.meter = meter
        #: Bumped on every change, so each state is rendered (and metered) once.
        self.version = 0
        self._rendered: tuple[int, Markup] | None = None
        self._recent: list[frozenset[tuple[int, int]]] = []
        self._stale = 0

    def changed(self) -> None:
        """The board changed outside a step (a paint, a clear, a reseed)."""
        self.version += 1
        self._recent.clear()
        self._stale = 0

    def step(self) -> None:
        """One generation on; a board stuck still or blinking for too long is reseeded."""
        self.board.step()
        self.version += 1
        state = frozenset(self.board.alive)
        self._stale = self._stale + 1 if state in self._recent else 0
        self._recent = [*self._recent[-1:], state]
        if self._stale >= STALE_STEPS:
            self.board.randomize(self.rng)
            self.changed()

    def board_html(self) -> Markup:
        """The board's cells, rendered once per state: ``<i class="on"></i>`` when alive.

        Cells carry no ids or coordinates (the click handler works them out from
        the cell's position), which keeps each frame small and morphs cheap.
        """
        if self._rendered is None or self._rendered[0] != self.version:
            cells = "".join('<i class="on"></i>' if on else "<i></i>" for on in self.board.cells())
            html = Markup(f'<div id="board">{cells}</div>')  # noqa: S704 - no user text
            self.meter.feed(patch_elements(html))
            self._rendered = (self.version, html)
        return self._rendered[1]


async def run(app: App, game: Game, rate: float) -> None:
    """Step the game ``rate`` times a second (on a fixed schedule) until cancelled."""
    loop = asyncio.get_running_loop()
    interval = 1 / rate
    tick = loop.time()
    while True:
        tick += interval
        await asyncio.sleep(max(0.0, tick - loop.time()))
        if not game.paused:
            game.step()
            await app.publish(BoardChanged(generation=game.board.generation))


def reference_compressor(settings: CompressionSettings) -> StreamCompressor:
    """A gzip context configured as the app's live streams configure theirs."""
    return settings.gzip.compressor() if "gzip" in settings.encodings else GzipCompressor()


def create_app(
    settings: Settings | None = None, *, rate: float = RATE, seed: int | None = None
) -> App:
    """A Game of Life app whose lifespan steps the board ``rate`` times a second."""

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        task = asyncio.create_task(run(app, game, rate))
        app.state.stepper = task
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app = App(templates=TEMPLATES, settings=settings, head=HEAD, lifespan=lifespan)
    game = Game(CompressionMeter(reference_compressor(app.compression)), seed)
    app.state.game = game

    async def changed() -> None:
        game.changed()
        await app.publish(BoardChanged(generation=game.board.generation))

    @app.page("/")
    @on(BoardChanged)
    class Life(Page):
        """The board, its controls, and what each frame weighs."""

        def title(self) -> str:
            return "Game of Life"

        async def render(self) -> str:
            board = game.board_html()  # first: it feeds the meter shown below
            html: str = self.template(
                "life.html",
                board=board,
                size=SIZE,
                generation=game.board.generation,
                alive=len(game.board.alive),
                paused=game.paused,
                compression=game.meter.describe(),
            )
            return html

        @action
        async def paint(self, cell: Paint) -> None:
            try:
                game.board.paint(cell.x, cell.y)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            await changed()

        @action
        async def pause(self) -> None:
            """Pause, or resume when paused."""
            game.paused = not game.paused
            await changed()

        @action
        async def clear(self) -> None:
            game.board.clear()
            await changed()

        @action
        async def randomize(self) -> None:
            game.board.randomize(game.rng)
            await changed()

    return app


app = create_app()
