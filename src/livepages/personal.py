"""Personal views: a page personal only through its ``Session`` or ``Tab``, shared.

Without this, such a page gets a view per viewer, and one change costs one
render per viewer. A :class:`PersonalView` is one view for every viewer of the
page's URL instead:

- each viewer (:class:`Viewer`) keeps the real values of the render's personal
  parameters (its session, its tab), read when its stream opens and again when
  its tab or session changes;
- viewers are grouped by what the render needs of those values
  (:class:`Learned`, ``livepages.holes``): the values used in logic, and the kind
  of each value read. One render per group per change, with stand-ins for the
  personal parameters; the result is cut at its holes (a ``Template``) and each
  viewer gets it with its own text filled in, or nothing when that is what it
  got last;
- a render that meets a read it did not know, or a stand-in used in logic,
  teaches :class:`Learned` and is done again with the viewers regrouped: the page
  learns, once per process, what it varies by;
- each new shared result is checked against one real render of the group's
  first viewer; a printed value that did not come out as a hole (text changed
  by a filter, say) becomes a grouping value, so that no viewer ever sees
  anything but what its own render would have shown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from livepages.datastar import events
from livepages.holes import Kind, NeedsValue, Probe, Read, Template, kind_of, new_nonce, value_of
from livepages.injection import Context, Plan
from livepages.live import Connection, View
from livepages.protocol import SESSION_SCOPE_KEY
from livepages.responses import error_event
from livepages.shell import root

if TYPE_CHECKING:
    from livepages.live import LiveEngine
    from livepages.plans import PagePlan

__all__ = ["MAX_READS", "Learned", "PersonalView", "Viewer"]

log = logging.getLogger("livepages.personal")

#: Reads a page may make of its personal parameters before each viewer simply gets
#: a render of its own (a page that walks a whole session's data, say).
MAX_READS = 64
_UPDATE_FAILED = "This page failed to update."
#: Renders one change may take to learn what the page varies by, per group.
_ROUNDS = 8


class Learned:
    """What one page's renders read of their personal parameters, and how.

    Kept per page class for the life of the process: it only grows, so a page
    learns what it varies by once. ``key(args)`` is a viewer's group.
    """

    __slots__ = ("fixed", "nonce", "per_viewer", "plan", "reads", "verified")

    def __init__(self, plan: PagePlan) -> None:
        self.plan = plan
        self.reads: dict[Read, None] = {}  # ordered
        #: Reads whose real value the render needs (used in logic, or not a hole).
        self.fixed: set[Read] = set()
        #: Too many reads to keep track of: a group per viewer.
        self.per_viewer = False
        self.nonce = new_nonce()
        #: Reads whose stand-ins a real render has confirmed once (every render is
        #: checked in debug mode).
        self.verified: set[Read] = set()

    def key(self, args: dict[str, Any], viewer: Viewer) -> Hashable:
        """The group of a viewer with these arguments."""
        if self.per_viewer:
            return _Alone(id(viewer))
        parts: list[Hashable] = []
        for read in self.reads:
            value = value_of(read, args)
            kind = Kind.FIXED if read in self.fixed else kind_of(value)
            if kind is Kind.TEXT:
                parts.append(kind)
            elif kind is Kind.PROXY:
                parts.append((kind, type(value)))
            else:
                parts.append((kind, _hashable(value, viewer)))
        return tuple(parts)

    def kinds(self, args: dict[str, Any]) -> dict[Read, Kind]:
        """How a render for a group with these arguments answers each known read."""
        if self.per_viewer:
            return dict.fromkeys(self.reads, Kind.FIXED)
        return {
            read: Kind.FIXED if read in self.fixed else kind_of(value_of(read, args))
            for read in self.reads
        }

    def learn(self, reads: set[Read], fixed: set[Read]) -> None:
        """Remember new reads and reads that need their values."""
        new = (reads | fixed) - self.reads.keys()
        for read in sorted(new, key=str):  # the same order in every process
            self.reads[read] = None
        added = fixed - self.fixed
        self.fixed |= fixed
        if len(self.reads) > MAX_READS and not self.per_viewer:
            self.per_viewer = True
            log.warning(
                "%s reads more than %d values of its viewers' session or tab: each viewer "
                "now gets a render of its own",
                self.plan.cls.__name__,
                MAX_READS,
            )
        for read in sorted(added, key=str):
            log.info(
                "%s varies by %s: viewers with different values get different renders "
                "(print it, or move it out of the render, to share one)",
                self.plan.cls.__name__,
                read,
            )


def _hashable(value: Any, viewer: Viewer) -> Hashable:
    """``value`` as a grouping key: itself, or (unhashable) the viewer, a group alone.

    A session is keyed by its id: each request has a ``Session`` object of its own,
    and the streams of one session show the same session.
    """
    if getattr(type(value), "__livepages_session__", False):
        return ("session", value.id, value.revision)
    try:
        hash(value)
    except TypeError:
        return _Alone(id(viewer))
    return value  # type: ignore[no-any-return]


class _Alone:
    """A grouping value that is one viewer's alone (its value cannot be compared): the
    group renders again whenever that viewer's values are read again."""

    __slots__ = ("viewer",)

    def __init__(self, viewer: int) -> None:
        self.viewer = viewer

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Alone) and other.viewer == self.viewer

    def __hash__(self) -> int:
        return hash(self.viewer)


def _alone(key: Hashable) -> bool:
    """Whether a group's key holds a value that only identity tells apart."""
    if isinstance(key, _Alone):
        return True
    return isinstance(key, tuple) and any(
        isinstance(part, tuple) and isinstance(part[-1], _Alone) for part in key
    )


class Viewer:
    """One stream of a personal view: its real personal values and what it was sent."""

    __slots__ = ("args", "ctx", "key", "reads", "sent", "values")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.args: dict[str, Any] = {}
        self.key: Hashable = None
        #: The fill values of ``reads``, kept until the viewer's values change.
        self.reads: tuple[Read, ...] | None = None
        self.values: tuple[bytes, ...] = ()
        #: The template and values it was last sent, to send nothing twice.
        self.sent: tuple[bytes, tuple[bytes, ...]] | None = None

    def values_for(self, template: Template) -> tuple[bytes, ...]:
        """Its escaped text for the template's reads, kept while the reads are the same."""
        if self.reads is not template.reads:
            self.values = template.values(self.args)
            self.reads = template.reads
        return self.values


class Group:
    """The viewers of a personal view that one render serves."""

    __slots__ = ("connections", "dirty", "key", "template")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.connections: list[Connection] = []
        self.template: Template | None = None
        #: Render it at the next render, even if nothing else changed.
        self.dirty = True


class _Regroup(Exception):
    """A render learned something: regroup the viewers and render again."""


class PersonalView(View):
    """One view for every viewer of a personal page, rendered once per group."""

    __slots__ = ("everything", "groups", "interned", "learned", "personal", "refreshes")

    def __init__(
        self, engine: LiveEngine, key: tuple[Any, ...], plan: PagePlan, ctx: Context
    ) -> None:
        super().__init__(engine, key, plan, ctx)
        learned = engine.page_state.get(plan)
        if not isinstance(learned, Learned):
            learned = engine.page_state[plan] = Learned(plan)
        self.learned = learned
        personal = tuple(p for p in plan.render.params if p.name in plan.personal)
        self.personal = Plan(plan.render.func, personal, plan.render.is_async)
        self.groups: dict[Hashable, Group] = {}
        self.refreshes: set[asyncio.Task[None]] = set()
        self.interned: dict[tuple[Read, ...], tuple[Read, ...]] = {}
        #: Whether the next render is of every group (a change), not only dirty ones.
        self.everything = False

    def invalidate(self) -> None:
        self.everything = True
        super().invalidate()

    def _render_soon(self, group: Group) -> None:
        """Render one group again (its viewer's own values changed), not the others."""
        group.dirty = True
        View.invalidate(self)

    # -- viewers --------------------------------------------------------------------

    async def prepare(self, connection: Connection, ctx: Context) -> None:
        """Read the new viewer's personal values before it joins."""
        viewer = connection.viewer = Viewer(ctx)
        viewer.args = await self.engine.host.injector.arguments(self.personal, ctx)

    def join(self, connection: Connection) -> None:
        self.connections.append(connection)
        group = self._place(connection)
        if self.stale:
            self.invalidate()
        elif group.template is not None:
            self._send(connection, group.template)
        else:
            self._render_soon(group)

    def leave(self, connection: Connection) -> None:
        self._unplace(connection)
        super().leave(connection)

    def latest(self, connection: Connection) -> bytes | None:
        viewer = connection.viewer
        group = self.groups.get(viewer.key) if viewer is not None else None
        if viewer is None or group is None or group.template is None:
            return self.payload
        viewer.sent = None  # what it was sent never arrived whole: send it again
        return self._filled(viewer, group.template)

    def refreshed(self, connection: Connection) -> None:
        """The viewer's tab or session changed: read its values again (and those of
        its session's other streams here), and send what changed."""
        session = connection.session
        mine = [
            c for c in self.connections if c is connection or (session and c.session == session)
        ]
        self._start_refresh(mine)

    def reload(self) -> None:
        self._start_refresh(list(self.connections))
        self.invalidate()

    def _start_refresh(self, connections: list[Connection]) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh(connections))
        self.refreshes.add(task)
        task.add_done_callback(self.refreshes.discard)

    async def _refresh(self, connections: list[Connection]) -> None:
        for connection in connections:
            viewer = connection.viewer
            if viewer is None or connection.ended:
                continue
            viewer.ctx.request.scope.pop(SESSION_SCOPE_KEY, None)  # as the action left it
            try:
                viewer.args = await self.engine.host.injector.arguments(self.personal, viewer.ctx)
            except Exception as exc:
                await self.engine.host.errors.report(viewer.ctx.request, exc)
                continue
            viewer.reads = None
            if connection not in self.connections:
                continue  # it left meanwhile
            group = self._place(connection)
            if self.stale:
                self.invalidate()
            elif group.template is None or _alone(group.key):
                self._render_soon(group)  # its render may differ: it read those values
            else:
                self._send(connection, group.template)  # only its holes may differ

    def _place(self, connection: Connection) -> Group:
        """Put a viewer in the group its values say (moving it if they changed)."""
        viewer = connection.viewer
        assert viewer is not None
        key = self.learned.key(viewer.args, viewer)
        group = self.groups.get(viewer.key)
        if group is not None and key == viewer.key and connection in group.connections:
            return group
        self._unplace(connection)
        viewer.key = key
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key)
        group.connections.append(connection)
        return group

    def _unplace(self, connection: Connection) -> None:
        viewer = connection.viewer
        group = self.groups.get(viewer.key) if viewer is not None else None
        if group is None or connection not in group.connections:
            return
        group.connections.remove(connection)
        if not group.connections:
            del self.groups[group.key]

    def _regroup(self) -> None:
        for connection in list(self.connections):
            self._place(connection)

    # -- renders --------------------------------------------------------------------

    async def _render_once(self) -> None:
        self.stale = False
        everything, self.everything = self.everything, False
        with self.engine.reads.recording(self, adding=not everything):
            for _ in range(_ROUNDS):
                try:
                    for group in list(self.groups.values()):
                        if (everything or group.dirty) and self.groups.get(group.key) is group:
                            group.dirty = False
                            await self._render_group(group)
                    return
                except _Regroup:
                    self._regroup()
                    everything = True
            log.warning("%s: still learning after %d renders", self.plan.cls.__name__, _ROUNDS)

    async def _render_group(self, group: Group) -> None:
        first = group.connections[0].viewer
        assert first is not None
        host, learned = self.engine.host, self.learned
        probe = Probe(learned.nonce, learned.kinds(first.args), first.args)
        given = {name: probe.answer(Read(name)) for name in self.plan.personal}
        started = time.perf_counter()
        try:
            html = await host.documents.body(self.plan, self.page, self.ctx, given)
        except NeedsValue:
            html = None
        except Exception as exc:
            # Perhaps the stand-ins' doing (C code refusing one): give them their values.
            read_through = {read for read in probe.stood_in if read.steps}
            learned.learn(set(probe.discovered), probe.needed | read_through)
            if probe.needed or read_through:
                raise _Regroup from None
            self._rendered(started, 0, dedup=False, failed=True)
            if isinstance(exc, HTTPException) and exc.status_code < 500:
                self._broadcast(group, error_event(exc.status_code, exc.detail))
                return  # the page's own answer, as for any view
            await host.errors.report(self.ctx.request, exc)
            self._broadcast(group, error_event(500, host.errors.message(exc, _UPDATE_FAILED)))
            return
        if html is None or probe.learned:
            learned.learn(set(probe.discovered), probe.needed)
            raise _Regroup
        payload = events.patch_elements(root(html))
        if group.template is not None and payload == group.template.payload:
            self._rendered(started, len(payload), dedup=True)
            return
        template = Template.cut(payload, probe)
        if isinstance(template, set):
            learned.learn(set(), template)
            raise _Regroup
        # The same reads as before are the same tuple: each viewer's values are kept
        # (checked by identity, once per viewer and change).
        template = replace(template, reads=self.interned.setdefault(template.reads, template.reads))
        unchecked = probe.stood_in - learned.verified
        if (unchecked or self.engine.host.settings.debug) and probe.stood_in:
            if not await self._verified(template, first):
                # A stand-in was used in a way it cannot notice (``is``, C code reading
                # the text, a render that differs each time): its texts, then all it
                # stood in for, get their real values from now on.
                texts = {
                    r for r in probe.stood_in if r not in learned.fixed and r in template.reads
                }
                learned.learn(set(), texts or set(probe.stood_in))
                raise _Regroup
            learned.verified |= probe.stood_in
        group.template = template
        self._rendered(started, len(payload), dedup=False)
        for connection in group.connections:
            self._send(connection, template)

    async def _verified(self, template: Template, viewer: Viewer) -> bool:
        """Whether the template filled for ``viewer`` is its own render, byte for byte."""
        host = self.engine.host
        try:
            html = await host.documents.body(self.plan, self.page, viewer.ctx)
        except Exception:
            return False
        own = events.patch_elements(root(html))
        return template.fill(template.values(viewer.args)) == own

    # -- sending --------------------------------------------------------------------

    def _filled(self, viewer: Viewer, template: Template) -> bytes:
        values = viewer.values_for(template)
        viewer.sent = (template.payload, values)
        return template.fill(values)

    def _send(self, connection: Connection, template: Template) -> None:
        viewer = connection.viewer
        assert viewer is not None
        sent = viewer.sent
        values = viewer.values_for(template)
        if sent is not None and sent[0] is template.payload and sent[1] == values:
            return  # what it shows already
        connection.deliver(self._filled(viewer, template))

    def _broadcast(self, group: Group, payload: bytes) -> None:
        for connection in group.connections:
            connection.deliver(payload)
