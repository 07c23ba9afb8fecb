"""Text the database can store: one rule for every string that enters, from the API or the CLI."""

from __future__ import annotations

import re
from typing import Any, Iterator

from mandate.models.errors import bad_input

# PostgreSQL's text cannot hold U+0000, and its UTF-8 refuses the surrogates U+D800 to U+DFFF,
# which Python lets through from a command line's or a JSON file's escapes ("\ud800").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(value: str) -> bool:
    return _UNSTORABLE.search(value) is None


def refuse_unstorable(value: str, argument: str | None = None) -> str:
    """The value, unless it holds a character no database of ours can store (BAD_USER_INPUT)."""
    if not is_storable(value):
        what = f"'{argument}'" if argument else "The text"
        raise bad_input(f"{what} holds a NUL (U+0000) or a lone surrogate (U+D800 to U+DFFF): refused.", argument)
    return value


def made_storable(value: str, max_length: int) -> str:
    """Text a client sends that is kept as a note rather than checked (a User-Agent): what no
    database of ours can store becomes U+FFFD, and it is cut to `max_length` characters."""
    return _UNSTORABLE.sub("\ufffd", value[:max_length])


def strings_in(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a JSON value, keys included, with where it stands (`accounts[0].name`)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings_in(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where} (a key)", key
            yield from strings_in(item, f"{where}.{key}" if where else key)
