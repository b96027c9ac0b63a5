"""Publish/subscribe by subject: the ``Broker`` interface and its in-process implementation.

Actions publish events encoded once to bytes; live pages subscribe to the subjects their
view depends on (``chat.room.42``, ``user.7``, ``session.<id>``). ``MemoryBroker`` serves a
single process; ``livepages.broker.nats.NATSBroker`` implements the same interface across
processes (it needs nats-py, so it is imported from its own module). ``with_prefix``
gives each app its own subject namespace on a shared broker.
"""

from livepages.broker.base import (
    Broker,
    BrokerClosed,
    BrokerError,
    BrokerUnavailable,
    Callback,
    Message,
    QueueSubscription,
    ReconnectListener,
    Subscription,
    SubscriptionClosed,
)
from livepages.broker.memory import MemoryBroker
from livepages.broker.prefix import PrefixedBroker, with_prefix
from livepages.broker.subjects import (
    SubjectIndex,
    subject_matches,
    validate_pattern,
    validate_subject,
)

__all__ = [
    "Broker",
    "BrokerClosed",
    "BrokerError",
    "BrokerUnavailable",
    "Callback",
    "MemoryBroker",
    "Message",
    "PrefixedBroker",
    "QueueSubscription",
    "ReconnectListener",
    "SubjectIndex",
    "Subscription",
    "SubscriptionClosed",
    "subject_matches",
    "validate_pattern",
    "validate_subject",
    "with_prefix",
]
