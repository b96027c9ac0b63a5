"""The marketplace's data: accounts, listings, photos and conversations, in the store.

Every write is a store transaction, so it is either all there or not at all, for
every process that shares the database file; and every page that read what it
changed renders again (``livepages.store``). Uniqueness (one account per e-mail,
one conversation per listing and buyer) is a record keyed by the unique value:
``insert`` refuses a key that is taken, even when two processes race.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from livepages import Forbidden, NotFound, Store, StoreConflict, ValidationError

from .models import (
    MAX_MESSAGES,
    MAX_PHOTOS,
    Chat,
    ChatKey,
    ChatMessage,
    EmailKey,
    Filters,
    Inbox,
    Listing,
    ListingForm,
    Photo,
    Seeded,
    SignUpForm,
    User,
)

__all__ = [
    "MAX_RESULTS",
    "RETRIES",
    "SCRYPT_N",
    "Market",
    "NewPhoto",
    "hash_password",
    "verify_password",
]

#: scrypt's cost (2**14, r=8: 16 MiB and some 40 ms a hash here): slow enough to make
#: guessing from a stolen database costly, run in a thread so the server keeps serving.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
#: Listings a search shows at most (the newest that match).
MAX_RESULTS = 60
#: How many times a write that raced another one (``StoreConflict``) is tried again.
RETRIES = 8

T = TypeVar("T")


def hash_password(password: str) -> str:
    """``scrypt$<salt>$<hash>`` (hex) of the password, with a fresh salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (in constant time)."""
    try:
        kind, salt, digest = stored.split("$")
        salt_bytes, digest_bytes = bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    return hmac.compare_digest(_scrypt(password, salt_bytes), digest_bytes)


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )


#: A hash to check against when the e-mail is unknown: a wrong address takes as long
#: as a wrong password, so timing does not tell which addresses have accounts.
_NOBODY = "scrypt$" + "00" * 16 + "$" + "00" * 32


@dataclass(frozen=True, slots=True)
class NewPhoto:
    """A photo to keep: its type and bytes (read from an upload)."""

    content_type: str
    data: bytes


async def _retried(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a transaction again when another write got there first."""
    for _ in range(RETRIES - 1):
        try:
            return await attempt()
        except StoreConflict:
            await asyncio.sleep(secrets.randbelow(20) / 1000)  # two racers: let one go first
    return await attempt()


class Market:
    """The marketplace's collections in one store, and what the pages do with them."""

    def __init__(self, database: str | Path) -> None:
        self.store = Store(database)
        self.users = self.store.collection("users", User)
        self.emails = self.store.collection("emails", EmailKey)
        self.listings = self.store.collection("listings", Listing)
        self.photos = self.store.collection("photos", Photo)
        self.chats = self.store.collection("chats", Chat)
        self.chat_keys = self.store.collection("chat_keys", ChatKey)
        self.inboxes = self.store.collection("inboxes", Inbox)
        self.seeded = self.store.collection("seeded", Seeded)

    # -- accounts ----------------------------------------------------------------------

    async def sign_up(self, form: SignUpForm) -> User:
        """A new account; ``ValidationError`` if the e-mail is taken."""
        hashed = await asyncio.to_thread(hash_password, form.password)
        user = User(await self.users.next_key(), form.email, form.name, hashed, time.time())
        try:
            async with self.store.transaction() as tx:
                tx.insert(self.emails, EmailKey(form.email, user.id))
                tx.insert(self.users, user)
        except StoreConflict:
            raise ValidationError({"email": "is already registered: sign in instead"}) from None
        return user

    async def authenticate(self, email: str, password: str) -> User | None:
        """The user with this e-mail and password, or ``None``."""
        key = await self.emails.get(email)
        user = await self.users.get(key.user) if key is not None else None
        stored = user.password if user is not None else _NOBODY
        ok = await asyncio.to_thread(verify_password, password, stored)
        return user if ok and user is not None else None

    async def user(self, user_id: int) -> User | None:
        """An account, if there is one."""
        return await self.users.get(user_id)

    # -- listings ------------------------------------------------------------------------

    async def search(self, filters: Filters) -> tuple[list[Listing], int]:
        """The newest ``MAX_RESULTS`` listings that match, and how many match in all."""
        found = [listing for listing in await self.listings.all() if filters.matches(listing)]
        found.sort(key=lambda listing: listing.id, reverse=True)
        return found[:MAX_RESULTS], len(found)

    async def listing(self, listing_id: int) -> Listing:
        """A listing, or ``NotFound``."""
        listing = await self.listings.get(listing_id)
        if listing is None:
            raise NotFound(f"there is no listing {listing_id}")
        return listing

    async def post(self, seller: int, form: ListingForm, photos: Sequence[NewPhoto]) -> Listing:
        """A new listing with its photos, written together."""
        if len(photos) > MAX_PHOTOS:
            raise ValidationError({"photos": f"at most {MAX_PHOTOS} photos"})
        ids = [await self.photos.next_key() for _ in photos]
        now = time.time()
        listing = Listing(
            await self.listings.next_key(),
            seller,
            form.title,
            form.category,
            form.cents,
            form.description,
            ids,
            now,
            now,
        )
        async with self.store.transaction() as tx:
            for photo_id, photo in zip(ids, photos, strict=True):
                tx.insert(self.photos, Photo(photo_id, seller, photo.content_type, photo.data))
            tx.insert(self.listings, listing)
        return listing

    async def edit(
        self,
        listing_id: int,
        editor: int,
        form: ListingForm,
        photos: Sequence[NewPhoto],
        remove: Sequence[int] = (),
    ) -> Listing:
        """Save a listing's new text and price, add ``photos`` and drop ``remove``.

        ``Forbidden`` unless ``editor`` is the seller.
        """
        ids = [await self.photos.next_key() for _ in photos]

        async def attempt() -> Listing:
            async with self.store.transaction() as tx:
                listing = await tx.get(self.listings, listing_id)
                if listing is None:
                    raise NotFound(f"there is no listing {listing_id}")
                if listing.seller != editor:
                    raise Forbidden("only the seller edits a listing")
                kept = [p for p in listing.photos if p not in set(remove)]
                if len(kept) + len(ids) > MAX_PHOTOS:
                    raise ValidationError({"photos": f"at most {MAX_PHOTOS} photos"})
                for photo_id, photo in zip(ids, photos, strict=True):
                    tx.insert(self.photos, Photo(photo_id, editor, photo.content_type, photo.data))
                for photo_id in set(listing.photos) - set(kept):
                    tx.delete(self.photos, photo_id)
                listing.title, listing.category = form.title, form.category
                listing.price, listing.description = form.cents, form.description
                listing.photos, listing.updated = kept + ids, time.time()
                tx.put(self.listings, listing)
            return listing

        return await _retried(attempt)

    async def photo(self, photo_id: int) -> Photo | None:
        """A photo, if there is one."""
        return await self.photos.get(photo_id)

    # -- conversations ----------------------------------------------------------------------

    async def open_chat(self, listing_id: int, buyer: int) -> int:
        """The id of the buyer's conversation about the listing, started if need be."""
        listing = await self.listing(listing_id)
        if listing.seller == buyer:
            raise ValidationError({"contact": "this is your own listing"})
        key = f"{listing_id}:{buyer}"
        found = await self.chat_keys.get(key)
        if found is not None:
            return found.chat
        chat_id = await self.chats.next_key()

        async def attempt() -> int:
            async with self.store.transaction() as tx:
                taken = await tx.get(self.chat_keys, key)
                if taken is not None:  # the buyer's other tab, or process, was first
                    return taken.chat
                tx.insert(self.chat_keys, ChatKey(key, chat_id))
                tx.insert(self.chats, Chat(chat_id, listing_id, buyer, listing.seller, time.time()))
                for user in (buyer, listing.seller):
                    inbox = await tx.get(self.inboxes, user) or Inbox(user)
                    inbox.chats.append(chat_id)
                    tx.put(self.inboxes, inbox)
            return chat_id

        return await _retried(attempt)

    async def chat(self, chat_id: int, user: int) -> Chat:
        """A conversation of ``user``'s: anyone else's is ``NotFound``, as if absent."""
        chat = await self.chats.get(chat_id)
        if chat is None or not chat.party(user):
            raise NotFound(f"you have no conversation {chat_id}")
        return chat

    async def conversations(self, user: int) -> list[Chat]:
        """``user``'s conversations, the latest active first."""
        inbox = await self.inboxes.get(user)
        chats = [await self.chats.get(chat_id) for chat_id in (inbox.chats if inbox else [])]
        found = [chat for chat in chats if chat is not None]
        found.sort(key=lambda c: c.messages[-1].sent if c.messages else c.created, reverse=True)
        return found

    async def send(self, chat_id: int, sender: int, text: str) -> ChatMessage:
        """Add a message to the conversation (which the sender has then seen)."""

        async def attempt() -> ChatMessage:
            async with self.store.transaction() as tx:
                chat = await tx.get(self.chats, chat_id)
                if chat is None or not chat.party(sender):
                    raise NotFound(f"you have no conversation {chat_id}")
                if len(chat.messages) >= MAX_MESSAGES:
                    raise ValidationError({"text": "this conversation is full: start another"})
                message = ChatMessage(chat.last_id + 1, sender, text, time.time())
                chat.messages.append(message)
                _mark_seen(chat, sender, message.id)
                tx.put(self.chats, chat)
            return message

        return await _retried(attempt)

    async def mark_seen(self, chat_id: int, user: int) -> bool:
        """Note that ``user`` has seen every message so far; whether that changed anything."""

        async def attempt() -> bool:
            async with self.store.transaction() as tx:
                chat = await tx.get(self.chats, chat_id)
                if chat is None or not chat.party(user):
                    raise NotFound(f"you have no conversation {chat_id}")
                if chat.seen_by(user) >= chat.last_id:
                    return False
                _mark_seen(chat, user, chat.last_id)
                tx.put(self.chats, chat)
            return True

        return await _retried(attempt)


def _mark_seen(chat: Chat, user: int, message_id: int) -> None:
    if user == chat.buyer:
        chat.seen_buyer = max(chat.seen_buyer, message_id)
    else:
        chat.seen_seller = max(chat.seen_seller, message_id)
