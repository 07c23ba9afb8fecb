"""Holding one request at a chosen point, so that another can commit meanwhile (races made
deterministic, in one process)."""

from __future__ import annotations

import asyncio
from typing import Any


def held_after(monkeypatch, owner: Any, name: str) -> tuple[asyncio.Event, asyncio.Event]:
    """The next call of `owner.name` (an async function) runs, then waits until `resume` is set;
    `held` is set once it waits. Later calls run straight through."""
    held, resume, original = asyncio.Event(), asyncio.Event(), getattr(owner, name)

    async def held_once(*args, **kwargs):
        result = await original(*args, **kwargs)
        if not held.is_set():
            held.set()
            await resume.wait()
        return result

    monkeypatch.setattr(owner, name, held_once)
    return held, resume
