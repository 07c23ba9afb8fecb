"""Secrets at rest: TOTP secrets encrypted, tokens and recovery codes hashed, passwords argon2id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mandate.config import get_settings


def _fernet_key(secret: str) -> bytes:
    # Any string can be a key: HKDF turns it into the 32 bytes Fernet needs.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"mandate-totp-secret", info=b"fernet"
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(derived)


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(k)) for k in keys])


def cipher() -> MultiFernet:
    return _cipher(tuple(get_settings().secret_keys))


def encrypt_secret(plain: str) -> str:
    return cipher().encrypt(plain.encode()).decode()


class UnreadableSecret(Exception):
    """A stored secret decrypts under none of MANDATE_SECRET_KEY's keys: one was dropped before
    `mandate rotate-key` re-encrypted everything under the others. The server's fault, not the
    caller's."""


def decrypt_secret(token: str) -> str:
    try:
        return cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise UnreadableSecret("a TOTP secret cannot be decrypted with the configured keys") from exc


def digest(value: str) -> str:
    """SHA-256 for values with 100 bits or more of entropy (tokens, recovery codes)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return "mdt_" + secrets.token_urlsafe(32)  # 256 bits


# A prefix of its own, so secret scanners (GitHub's, GitLab's) recognise a leaked API token.
API_TOKEN_PREFIX = "mandate_pat_"


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def password_hasher() -> PasswordHasher:
    s = get_settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_kib)


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Always does one argon2 verification, so an unknown email costs the same time."""
    hasher = password_hasher()
    try:
        return hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=4)
def _dummy_hash_for(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash(secrets.token_urlsafe(16))


def warm_up() -> None:
    """At start-up: load the keys (warning now if the development key is used) and compute the
    dummy hash, so the first unknown email costs no more than others."""
    cipher()
    _dummy_hash()


def _dummy_hash() -> str:
    s = get_settings()
    return _dummy_hash_for(s.argon2_time_cost, s.argon2_memory_kib)
