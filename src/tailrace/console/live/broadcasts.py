"""Operator broadcasts: the checks on their (untrusted) text and their commit to the outbox.

Shared by the console's form, the REST API (`POST /api/v1/broadcasts`) and so `tailrace broadcast`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tailrace.events.model import Broadcast
from tailrace.state.abc import StateStore

MAX_BROADCAST = 1000
"""Characters of one broadcast (the text is untrusted; it is shown as text on every page)."""


def broadcast_text(text: str) -> str:
    """The text as broadcast: trimmed, not empty, within the cap, no control characters but
    newlines and tabs. :raises ValueError: naming the field."""
    text = text.strip()
    if not text:
        raise ValueError("text: a broadcast needs some text")
    if len(text) > MAX_BROADCAST:
        raise ValueError(f"text: at most {MAX_BROADCAST} characters; got {len(text)}")
    bad = next((ch for ch in text if ord(ch) < 32 and ch not in "\n\t"), None)
    if bad is not None:
        raise ValueError(f"text: control character U+{ord(bad):04X} is not allowed")
    return text


def record_broadcast(store: StateStore, text: str, *, sender: str, owner: str | None) -> None:
    """Commit a Broadcast to the outbox (the bus relays it to every console process).
    `owner` None reaches every page; an owner's broadcast reaches that owner's pages only."""
    with store.transaction() as tx:
        tx.events.append(Broadcast(at=datetime.now(UTC), owner=owner, text=text, sender=sender))
