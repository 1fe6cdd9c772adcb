"""Staff passwords: argon2id hashes, rehashed when the parameters change, and strong one-time passwords."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's low-memory profile of argon2id. Raising them later makes
# `check_password` rehash each account at its next sign-in.
HASHER = PasswordHasher()
MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a bound keeps a megabyte "password" from costing anything
# No 0/O, 1/l/I: one-time passwords are read off a screen and typed by hand.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def check_password(password_hash: str, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one uses outdated parameters)."""
    try:
        HASHER.verify(password_hash, password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return False, None
    return True, (HASHER.hash(password) if HASHER.check_needs_rehash(password_hash) else None)


@cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def spend_equal_time(password: str) -> None:
    """Verify against a throwaway hash, so an unknown email answers as slowly as a wrong password."""
    check_password(_dummy_hash(), password)


def one_time_password() -> str:
    """Four groups of five characters (about 117 bits), easy to copy from the screen."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(4))
    return "-".join(groups)


def password_problem(password: str) -> str | None:
    """Why a chosen password is refused (a message id), or None."""
    if len(password) < MIN_LENGTH:
        return "too_short"
    if len(password) > MAX_LENGTH:
        return "too_long"
    return None


# A local part this short ("jo@…") would refuse almost any password while protecting nothing.
MIN_LOCAL_PART = 3


def new_password_problem(new: str, *, current: str, email: str) -> str | None:
    """Why a staff member's own new password is refused (a message id), or None.

    Besides the length: it must differ from the current one, and must not contain the address's local part
    (case-insensitive), the first thing anyone guessing would try.
    """
    problem = password_problem(new)
    if problem:
        return problem
    if new == current:
        return "same_as_current"
    local_part = email.rsplit("@", 1)[0].casefold()
    if len(local_part) >= MIN_LOCAL_PART and local_part in new.casefold():
        return "contains_email"
    return None
