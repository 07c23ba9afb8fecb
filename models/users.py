"""Users: emails, names, passwords."""

from __future__ import annotations

import re

from models.errors import bad_input

# Deliberately plain: one @, no spaces, a dot in the domain; the mailbox decides the rest.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+", re.ASCII)
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 8


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise bad_input("That is not an email address.", "email")
    return email


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise bad_input("A name is 1 to 200 characters.", "name")
    return name


def check_password(password: str, min_length: int = MIN_PASSWORD_LENGTH) -> str:
    if not min_length <= len(password) <= MAX_PASSWORD_LENGTH:
        raise bad_input(f"A password is {min_length} to {MAX_PASSWORD_LENGTH} characters.", "password")
    return password
