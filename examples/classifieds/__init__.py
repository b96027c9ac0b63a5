"""Classifieds: a marketplace with accounts, listings, photos, chats and presence."""
