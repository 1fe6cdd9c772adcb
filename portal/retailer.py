"""The retailer's branding and contacts, read from a TOML file and validated at start-up."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from portal.i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES, get_locale

HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RetailerConfigError(ValueError):
    """The retailer file is missing something or holds a bad value; the message says which and where."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Retailer:
    name: str
    legal_name: str
    registration: str
    postal_address: str
    website: str
    logo: str
    logo_alt: str
    primary_colour: str
    accent_colour: str
    dpo_names: Mapping[str, str]  # the DPO's title in each language the portal speaks
    dpo_email: str
    dpo_postal_address: str
    support_email: str
    # Profile fields the customer cannot change alone: "ask for a correction" files a rectification request.
    locked_fields: tuple[str, ...] = ("birth_date", "loyalty_number")

    @property
    def dpo_name(self) -> str:
        """The DPO's title in the language being spoken (a page, an email, an archive)."""
        return self.dpo_names.get(get_locale()) or self.dpo_names[DEFAULT_LOCALE]


def _relative_luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_with_white(colour: str) -> float:
    return 1.05 / (_relative_luminance(colour) + 0.05)


def load_retailer(path: Path) -> Retailer:
    """Read and validate the retailer file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RetailerConfigError(f"{path}: file not found (set PORTAL_RETAILER_FILE)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RetailerConfigError(f"{path}: not valid TOML: {exc}") from exc

    def text(section: str, key: str) -> str:
        value = data.get(section, {}).get(key)
        if not isinstance(value, str) or not value.strip():
            raise RetailerConfigError(f"{path}: [{section}] {key} must be a non-empty string")
        return value.strip()

    def colour(key: str) -> str:
        value = text("colors", key)
        if not HEX_COLOUR.match(value):
            raise RetailerConfigError(f"{path}: [colors] {key} must be a hex colour like #2f5d50, not {value!r}")
        if contrast_with_white(value) < 4.5:
            raise RetailerConfigError(
                f"{path}: [colors] {key} = {value} has contrast {contrast_with_white(value):.2f}:1 with white; "
                "WCAG AA needs 4.5:1, choose a darker colour"
            )
        return value.lower()

    def email(section: str, key: str) -> str:
        value = text(section, key)
        if not EMAIL.match(value):
            raise RetailerConfigError(f"{path}: [{section}] {key} must be an email address")
        return value

    def translated(section: str, key: str) -> dict[str, str]:
        """A text the customer reads: one string per supported language (fr = "…", en = "…")."""
        value = data.get(section, {}).get(key)
        if not isinstance(value, dict) or any(
            not isinstance(value.get(locale), str) or not value[locale].strip() for locale in SUPPORTED_LOCALES
        ):
            raise RetailerConfigError(
                f"{path}: [{section}] {key} must give the text in every language: "
                + ", ".join(f'{locale} = "…"' for locale in SUPPORTED_LOCALES)
            )
        return {locale: value[locale].strip() for locale in SUPPORTED_LOCALES}

    locked = data.get("profile", {}).get("locked_fields", ["birth_date", "loyalty_number"])
    lockable = {"first_name", "last_name", "phone", "postal_address", "birth_date", "loyalty_number"}
    if not isinstance(locked, list) or any(field not in lockable for field in locked):
        raise RetailerConfigError(
            f"{path}: [profile] locked_fields must be a list drawn from {', '.join(sorted(lockable))}"
        )

    logo = text("retailer", "logo")
    if logo.startswith(("/", "http:", "https:")) or ".." in logo:
        raise RetailerConfigError(f"{path}: [retailer] logo must be a path under static/, e.g. img/logo.svg")
    return Retailer(
        name=text("retailer", "name"),
        legal_name=text("retailer", "legal_name"),
        registration=text("retailer", "registration"),
        postal_address=text("retailer", "postal_address"),
        website=text("retailer", "website"),
        logo=logo,
        logo_alt=text("retailer", "logo_alt"),
        primary_colour=colour("primary"),
        accent_colour=colour("accent"),
        dpo_names=translated("dpo", "name"),
        dpo_email=email("dpo", "email"),
        dpo_postal_address=text("dpo", "postal_address"),
        support_email=email("support", "email"),
        locked_fields=tuple(locked),
    )
