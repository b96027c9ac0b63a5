"""Tabs: one signed id per page load, with server-side ``state`` that outlives a stream.

``Tab`` and ``TabRegistry`` (``livepages.tabs.registry``) issue and verify tab ids
and keep each tab's state in the process. A ``TabStore`` (``livepages.tabs.store``)
keeps the state where every process finds it: ``NATSTabStore``
(``livepages.tabs.nats``, JetStream KV) when the app runs on NATS.
"""

from livepages.tabs.registry import Tab, TabRegistry
from livepages.tabs.store import TabConflict, TabEntry, TabStore, TabStoreError

__all__ = ["Tab", "TabConflict", "TabEntry", "TabRegistry", "TabStore", "TabStoreError"]
