"""Demo accounts and listings, so that a fresh marketplace does not look empty.

``seed(market)`` writes them once per database: a marker record is inserted in
the same transaction, so of two processes starting on one empty file only one
seeds. The photos are small PNG pictures drawn here (a coloured card with a
simple shape), so the example needs no image files.
"""

from __future__ import annotations

import struct
import time
import zlib

from livepages import StoreConflict

from .market import Market, hash_password
from .models import EmailKey, Listing, Photo, Seeded, User

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "png", "seed"]

#: Every demo account's password (shown on the sign-in page).
DEMO_PASSWORD = "marketplace"  # noqa: S105 (a demo, and shown on the sign-in page)
DEMO_USERS = (
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("alan@example.com", "Alan Turing"),
)

# (seller index, title, category, price in cents, description, colour)
_LISTINGS = (
    (0, "Road bike, 56 cm frame", "bikes", 42000, "Aluminium frame, 105 groupset, new tyres. "
     "Ridden for two summers, serviced in May.", (200, 70, 60)),
    (1, "Oak dining table", "furniture", 18500, "Seats six. A few marks on the top, solid and "
     "steady. Collection only.", (150, 110, 70)),
    (2, "Mechanical keyboard", "electronics", 6500, "Tenkeyless, brown switches, USB-C. "
     "Comes with spare keycaps.", (60, 70, 90)),
    (0, "The Art of Computer Programming, vol. 1-3", "books", 9000, "Hardback box set, "
     "like new. Bookmarks included at no extra charge.", (90, 60, 120)),
    (1, "Wool winter coat (M)", "clothing", 7000, "Navy, worn one season, dry-cleaned.",
     (40, 60, 110)),
    (2, "Espresso machine", "home", 12000, "Pump machine with a steam wand. Descaled last "
     "week; makes a great flat white.", (120, 80, 50)),
    (0, "Tennis racket and balls", "sports", 3500, "Graphite racket, grip size 3, with a "
     "tube of balls.", (60, 150, 80)),
    (1, "27-inch monitor", "electronics", 15000, "1440p, 144 Hz, height-adjustable stand. "
     "No dead pixels.", (40, 120, 160)),
    (2, "Children's bike with stabilisers", "bikes", 4000, "16-inch wheels, for ages 4-6. "
     "Bell and basket included.", (220, 140, 40)),
    (0, "Bookshelf, white", "furniture", 3000, "Five shelves, 180 cm tall. Easy to take "
     "apart for transport.", (190, 190, 180)),
    (1, "Camping tent for two", "sports", 5500, "Light, quick to pitch, used three times.",
     (70, 130, 70)),
    (2, "Vintage film camera", "other", 11000, "35 mm rangefinder, shutter works at all "
     "speeds. A roll of film to try it.", (100, 100, 100)),
)  # fmt: skip


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A PNG image: a card of ``colour`` with a lighter circle in the middle."""
    r, g, b = colour
    light = bytes(min(255, c + 70) for c in colour)
    cx, cy, radius = width / 2, height / 2, min(width, height) / 3
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter: none
        for x in range(width):
            inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
            row += light if inside else bytes((r, g, b))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


async def seed(market: Market) -> bool:
    """Write the demo data unless it is there already; whether it was written now."""
    marks = market.seeded
    if await marks.get("demo") is not None:
        return False
    hashed = hash_password(DEMO_PASSWORD)  # one hash for all: seeding stays quick
    now = time.time()
    # Fixed keys (users 1-3, listings and photos 1-12): of two processes seeding one new
    # file at once, the second conflicts on them and writes nothing, and the demo data
    # has the same ids everywhere. ``next_key`` hands out keys above them afterwards.
    users = [
        User(n, email, name, hashed, now) for n, (email, name) in enumerate(DEMO_USERS, start=1)
    ]
    try:
        async with market.store.transaction() as tx:
            tx.insert(marks, Seeded("demo"))
            for user in users:
                tx.insert(market.users, user)
                tx.insert(market.emails, EmailKey(user.email, user.id))
            for n, (seller, title, category, price, text, colour) in enumerate(_LISTINGS, 1):
                picture = png(320, 240, colour)
                tx.insert(market.photos, Photo(n, users[seller].id, "image/png", picture))
                created = now - (len(_LISTINGS) - n) * 3600
                listing = Listing(
                    n, users[seller].id, title, category, price, text, [n], created, created
                )
                tx.insert(market.listings, listing)
    except StoreConflict:  # another process seeded first
        return False
    return True
