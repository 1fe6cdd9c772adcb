"""Time-based one-time codes (RFC 6238): 30-second steps, one step of drift either way, each step used once."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

STEP_SECONDS = 30
DRIFT_STEPS = 1  # a phone clock off by up to 30 s, or a code typed as it rolls over, still works


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits, as RFC 4226 recommends


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as a QR code in a data: URI (the CSP allows data: images and no inline style)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")


def step_at(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def accepted_step(secret: str, code: str, *, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to, or None when it is wrong, too old, or its step was already used.

    Only steps after the last accepted one count: a code seen over a shoulder cannot be replayed.
    """
    code = "".join(code.split())
    if len(code) != 6 or not (code.isascii() and code.isdigit()):  # "１２３４５６" is digits to str.isdigit
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = step_at(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
