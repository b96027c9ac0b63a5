"""Chat: rooms at ``/rooms/{room}`` whose messages are a list stream, never re-rendered.

A room's messages are a ``ListStream`` (``livepages.lists``): the room page renders
only their container (``{{ messages.attrs }}``), and each viewer that opens the
page gets the room's history from the page's source (``ChatRoom.history``, reading
``rooms.history(room)``) over its stream. Sending a message appends it with
``messages.append(message, topic=room)``: the message is rendered once and every
viewer of that room, on every process, gets one small ``append`` patch, whatever
the length of the history. Re-renders of the page (who is online) morph around the
list without touching it.

A message can carry images: the compose form has a file input bound to the
``images`` signal (``upload("images")``), whose files upload in chunks with their
progress shown as they go (``livepages.uploads``); ``send`` receives the finished
ones as ``list[Uploaded]``. Only PNG, JPEG, GIF and WebP files of up to 2 MiB, four
a message, are accepted, checked by the server (their first bytes too); they are
kept in memory (the latest ``MAX_IMAGES``) and served from ``/images/<n>``.

Sending is an app-wide action (``@app.action``) that reads the room from the
``room`` signal, not a page action: livepages re-renders the calling tab's
views after every page action, and a room's view is shared by all its viewers,
so a page action would send everyone the page again after each message. After
the append, ``send`` publishes ``MessageCounted``: the lobby listens to it and
re-renders its message counts.

People pick a name in the page (the ``name`` signal): there are no accounts.
Each room shows who is in it now (``presence = "chat.{room}"``, and ``Members`` in
its render), on every process when the app runs on NATS: every open tab of the room
is one member, named by the ``name`` signal its stream sent when it opened
(``presence_name``) and renamed for everyone as soon as the name input changes
(``rename``). Every name and message is escaped by the templates. A room name that is not
lowercase letters, digits and dashes is a 400 on every route, checked by the
page parameter's converter before any code of the page runs.

``create_app(settings)`` builds a fresh app with empty rooms (tests use one per
test, with a local Datastar build); ``app`` is the one ``make run`` serves.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from livepages import (
    SSE,
    App,
    BadRequest,
    Converter,
    ListStream,
    Members,
    Page,
    Redirect,
    Settings,
    Uploaded,
    ValidationError,
    action,
    redirect,
)
from livepages.events import Event, on

__all__ = [
    "HISTORY",
    "MAX_IMAGES",
    "MAX_NAME",
    "MAX_TEXT",
    "Draft",
    "Images",
    "Message",
    "MessageCounted",
    "Nickname",
    "RoomChoice",
    "RoomName",
    "Rooms",
    "app",
    "create_app",
    "parse_room",
]

TEMPLATES = Path(__file__).parent / "templates"
HEAD = """<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light; --line: #e3e6ea; --muted: #6b7280; --accent: #2563eb; }
  body { font-family: system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #111; }
  main { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1rem; }
  a { color: var(--accent); text-decoration: none; }
  h1 { margin: .3rem 0 1rem; font-size: 1.5rem; }
  .room { display: flex; gap: 1rem; align-items: flex-start; }
  .chat, .online, #rooms, #open-room { background: #fff; border: 1px solid var(--line);
                                       border-radius: .75rem; }
  .chat { flex: 1; min-width: 0; }
  #messages { list-style: none; margin: 0; padding: .5rem 0; }
  #messages li { padding: .35rem 1rem; overflow-wrap: anywhere; }
  #messages li:hover { background: #f8f9fb; }
  #messages .author { font-weight: 600; margin-right: .5rem; }
  #messages .image { display: block; max-width: 14rem; max-height: 14rem; margin: .35rem 0;
                     border-radius: .5rem; border: 1px solid var(--line); }
  .empty { color: var(--muted); padding: 0 1rem; }
  .chat:has(#messages li) .empty { display: none; }
  #compose { border-top: 1px solid var(--line); padding: .75rem 1rem; display: grid; gap: .5rem; }
  #compose p { margin: 0; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
  input:not([type=file]) { padding: .45rem .6rem; border: 1px solid var(--line);
                           border-radius: .5rem; font: inherit; }
  #text { flex: 1; }
  button { background: var(--accent); color: #fff; border: 0; border-radius: .5rem;
           padding: .45rem 1rem; font: inherit; font-weight: 600; cursor: pointer; }
  .online { min-width: 10rem; padding: .75rem 1rem; }
  .online h2 { font-size: .95rem; margin: 0 0 .5rem; }
  #online { list-style: none; padding: 0; margin: 0; }
  #online li { padding: .1rem 0; }
  #online li::before { content: "\\25CF"; color: #22a34a; margin-right: .4rem; }
  #online-count, small { color: var(--muted); }
  .error { color: #b00; }
  #rooms { list-style: none; padding: .25rem 0; margin: 0 0 1rem; }
  #rooms li { padding: .5rem 1rem; }
  #rooms li + li { border-top: 1px solid var(--line); }
  #open-room { display: flex; gap: .5rem; align-items: center; padding: .75rem 1rem; }
</style>"""

#: Room names: lowercase words with dashes, so every room has one plain URL.
ROOM_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
ROOM_RULE = "a room name (lowercase letters, digits and dashes, at most 32)"
DEFAULT_ROOMS = ("general", "random")
MAX_NAME = 32
MAX_TEXT = 500
#: Messages kept per room (in memory; older ones are forgotten).
HISTORY = 100
#: Rooms kept at most: a room is created by its first message.
MAX_ROOMS = 100
#: Images: the types accepted (each recognised by its first bytes), the largest, how
#: many a message carries, and how many are kept (in memory; older ones are forgotten).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_IMAGE_SIZE = 2 * 1024 * 1024
MAX_IMAGES_PER_MESSAGE = 4
MAX_IMAGES = 64


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    id: int
    author: str
    text: str
    #: The numbers of its images (``/images/<n>``).
    images: tuple[int, ...] = ()


class Images:
    """The latest ``MAX_IMAGES`` images posted, in memory, by number."""

    def __init__(self) -> None:
        self._images: OrderedDict[int, tuple[bytes, str]] = OrderedDict()
        self._next = 1

    def add(self, image: Uploaded) -> int:
        """Keep an uploaded image (and forget the upload): its number."""
        number, self._next = self._next, self._next + 1
        self._images[number] = (image.read_bytes(), image.content_type)
        image.discard()
        while len(self._images) > MAX_IMAGES:
            self._images.popitem(last=False)
        return number

    def get(self, number: int) -> tuple[bytes, str] | None:
        """An image's bytes and type, if it is still kept."""
        return self._images.get(number)


class Rooms:
    """Every room's recent messages, in memory: a real app would keep them in a database."""

    def __init__(self) -> None:
        self._rooms: dict[str, deque[Message]] = {
            name: deque(maxlen=HISTORY) for name in DEFAULT_ROOMS
        }
        self._next_id = 1

    def names(self) -> list[str]:
        """The rooms with messages (and the default ones), in the order they opened."""
        return list(self._rooms)

    def history(self, room: str) -> list[Message]:
        """A room's recent messages, oldest first."""
        return list(self._rooms.get(room, ()))

    def post(self, room: str, author: str, text: str, images: tuple[int, ...] = ()) -> Message:
        """Add a message to a room, opening the room if needed."""
        messages = self._rooms.get(room)
        if messages is None:
            if len(self._rooms) >= MAX_ROOMS:
                raise ValidationError({"text": "too many rooms are open: try an existing one"})
            messages = self._rooms[room] = deque(maxlen=HISTORY)
        message = Message(self._next_id, author, text, images)
        self._next_id += 1
        messages.append(message)
        return message

    def count(self, room: str) -> int:
        """How many messages a room holds."""
        return len(self._rooms.get(room, ()))


@dataclass
class MessageCounted(Event, subject="chat.counted"):
    """A room holds ``count`` messages now: the lobby re-renders its counts."""

    room: str
    count: int


@dataclass
class Draft:
    """The signals of the message form: the room (set by the page), who writes, and what."""

    room: str = ""
    name: str = ""
    text: str = ""


@dataclass
class Nickname:
    """The signals of ``rename``: the name typed so far."""

    name: str = ""


@dataclass
class RoomChoice:
    """The lobby's ``room`` signal: the room to go to."""

    room: str = ""


def parse_room(text: str) -> str:
    """``text`` as a room name; ``ValueError`` unless it is one."""
    if ROOM_NAME.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a room name")
    return text


#: A room name as a page parameter: anything else is a 400 before any code of ours runs.
RoomName = Annotated[str, Converter(parse_room, name=ROOM_RULE)]


def name_error(name: str) -> str:
    """What is wrong with a (stripped) name that is not empty, or ""."""
    return f"must be at most {MAX_NAME} characters" if len(name) > MAX_NAME else ""


def checked_draft(draft: Draft, images: int = 0) -> Draft:
    """The draft stripped; ``ValidationError`` with a message per bad field. A message
    with ``images`` may have no text."""
    try:
        room = parse_room(draft.room)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None  # the page sets it: not the user's doing
    name, text = draft.name.strip(), draft.text.strip()
    errors = {}
    if not name:
        errors["name"] = "choose a name"
    elif name_error(name):
        errors["name"] = name_error(name)
    if not text and not images:
        errors["text"] = "is empty"
    elif len(text) > MAX_TEXT:
        errors["text"] = f"must be at most {MAX_TEXT} characters"
    if images > MAX_IMAGES_PER_MESSAGE:
        errors["images"] = f"at most {MAX_IMAGES_PER_MESSAGE} images a message"
    if errors:
        raise ValidationError(errors)
    return Draft(room, name, text)


def create_app(settings: Settings | None = None) -> App:
    """A chat app with empty rooms."""
    settings = msgspec.structs.replace(
        settings or Settings(), upload_accept=IMAGE_TYPES, max_upload_size=MAX_IMAGE_SIZE
    )
    app = App(templates=TEMPLATES, settings=settings, head=HEAD)
    rooms = Rooms()
    pictures = Images()
    messages: ListStream[Message] = ListStream(app, "messages", render="message.html")

    @app.action
    async def send(draft: Draft, images: list[Uploaded], sse: SSE) -> None:
        """Post a message. An app-wide action, not a page action: see the README."""
        draft = checked_draft(draft, len(images))
        numbers = tuple(pictures.add(image) for image in images)
        message = rooms.post(draft.room, draft.name, draft.text, numbers)
        # One patch for every viewer of the room, on every process; then the lobby.
        await messages.append(message, topic=draft.room)
        await app.publish(MessageCounted(room=draft.room, count=rooms.count(draft.room)))
        # Empty the inputs (and an earlier complaint about images), keep the name.
        await sse.patch_signals({"text": "", "images": [], "errors": {"images": ""}})

    async def image(request: Request) -> Response:
        """``/images/<n>``: a posted image (its type checked against its bytes on upload)."""
        found = pictures.get(request.path_params["number"])
        if found is None:
            return PlainTextResponse("no such image", status_code=404)
        data, kind = found
        headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        return Response(data, media_type=kind, headers=headers)

    app.add_route("/images/{number:int}", image)

    @app.action
    async def rename(nickname: Nickname, request: Request) -> Response:
        """The name input changed: every room this tab is in shows the new name."""
        name = nickname.name.strip()
        if name_error(name):
            raise ValidationError({"name": name_error(name)})
        await app.presence.rename(request, name)  # "" becomes "guest"
        # Nothing to patch: a success would clear the errors that `send` may be showing.
        return Response(status_code=204)

    @app.page("/rooms/{room}")
    class ChatRoom(Page):
        """One room: its messages (a list stream: the history, then each new one
        appended as it comes); and who is in it now, re-rendered whenever someone
        comes, goes or changes name, around the messages."""

        room: RoomName
        presence = "chat.{room}"

        def title(self) -> str:
            return f"#{self.room}"

        def presence_name(self, draft: Draft) -> str:
            # The signals the stream's request carried: the name typed before it opened.
            return draft.name

        async def render(self, online: Members) -> str:
            html: str = self.template(
                "room.html",
                messages=messages,
                online=online,
                lobby=Lobby(),
                send=send,
                rename=rename,
                signals={
                    "room": self.room,
                    "name": "",
                    "text": "",
                    "errors": {"name": "", "text": "", "images": ""},
                },
            )
            return html

        @messages.source(topic="{room}")
        def history(self) -> list[Message]:
            # What each new viewer of this room gets, oldest first, in one chunk.
            return rooms.history(self.room)

    @app.page("/")
    @on(MessageCounted)  # any room: the lobby shows how many messages each one holds
    class Lobby(Page):
        """The list of rooms, and a way to open a new one."""

        def title(self) -> str:
            return "Chat"

        async def render(self) -> str:
            listed = [(name, ChatRoom(room=name), rooms.count(name)) for name in rooms.names()]
            html: str = self.template(
                "lobby.html", rooms=listed, signals={"room": "", "errors": {"room": ""}}
            )
            return html

        @action
        async def enter(self, choice: RoomChoice) -> Redirect:
            try:
                room = parse_room(choice.room.strip().lower())
            except ValueError:
                raise ValidationError({"room": f"must be {ROOM_RULE}"}) from None
            return redirect(ChatRoom(room=room))

    return app


app = create_app()
