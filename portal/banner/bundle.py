"""The banner's script as the retailer's pages load it: one file with its code, its CSS and its words.

`/consent/v1/banner.js`, the URL the retailer embeds once and forever, is a few hundred bytes that load the bundle
from a URL carrying its content hash (`/consent/v1/banner-<hash>.js`). The bundle can then be cached for a year
(`immutable`) while the small stable entry is revalidated every few minutes with its ETag, so a new policy version
or a fix reaches every visitor within minutes without the retailer touching their pages. One hash covers the code,
the CSS, the words in both languages and the purposes as the register states them: it is the banner version that
each answer records, so the exact banner a visitor answered can be rebuilt from the repository's history.

The words come from the portal's gettext catalogues (context "website banner"), the purposes and recipients from
the purpose register: the website says what the portal says.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path

from portal.consent.register import PurposeRegister
from portal.i18n import SUPPORTED_LOCALES, gettext, lazy_pgettext, using_locale

ASSETS = Path(__file__).parent / "assets"
CONFIG_PLACEHOLDER = '"__PORTAL_BANNER_CONFIG__"'
# CNIL (recommendation of 17 Sept 2020): a choice is kept at most 6 months, then asked again.
REMEMBER_DAYS = 182

WORDS = {
    "title": lazy_pgettext("website banner", "Your privacy choices"),
    "intro": lazy_pgettext(
        "website banner",
        "With your consent, %(retailer)s would like to use your data for the purposes below. Accept, refuse, or"
        " choose purpose by purpose: refusing is as easy as accepting and changes nothing to your visit. Closing"
        " this banner means you refuse. Your choice is kept for 6 months; change it at any time with the “Cookie"
        " settings” link at the bottom of every page.",
    ),
    "accept_all": lazy_pgettext("website banner", "Accept all"),
    "refuse_all": lazy_pgettext("website banner", "Refuse all"),
    "choose": lazy_pgettext("website banner", "Choose"),
    "save": lazy_pgettext("website banner", "Save my choices"),
    "close": lazy_pgettext("website banner", "Close and refuse all"),
    "details": lazy_pgettext("website banner", "What this means"),
    "recipients": lazy_pgettext("website banner", "Recipients:"),
    "policy": lazy_pgettext("website banner", "Our privacy policy"),
    "gpc": lazy_pgettext(
        "website banner",
        "Your browser sends the Global Privacy Control signal: we take it as your refusal of our marketing and"
        " analytics purposes, and have recorded it so. Tick a purpose yourself only if you want it.",
    ),
    "gpc_notice": lazy_pgettext(
        "website banner",
        "Your browser sends the Global Privacy Control signal: we take it as your refusal of our marketing and"
        " analytics purposes. You can change this with “Cookie settings”.",
    ),
    "settings": lazy_pgettext("website banner", "Cookie settings"),
    "dismiss": lazy_pgettext("website banner", "Close"),
}


class BannerConfigError(ValueError):
    """The banner is configured to ask about something that is not a consent-based purpose of the register."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """The banner as served: the stable entry (`loader`) and the hashed bundle (`script`), with their hashes."""

    script: bytes
    script_hash: str  # hex SHA-256 of `script`; its first 12 characters name its URL
    banner_version: str  # what each answer records: the hash of the code, CSS, words and purposes
    loader: bytes
    loader_etag: str

    @property
    def path(self) -> str:
        return f"/consent/v1/banner-{self.script_hash[:12]}.js"

    def gzipped_size(self) -> int:
        """Bytes of the bundle (code, CSS and words together) once compressed, as the browser downloads it."""
        return len(gzip.compress(self.script, compresslevel=9))


def words_in(locale: str, *, register: PurposeRegister, purposes: tuple[str, ...], retailer: str) -> dict:
    """What the banner says in `locale`: its words, and each purpose's title, description and recipients."""
    with using_locale(locale):
        words = {key: gettext(message) for key, message in WORDS.items()}
        words["intro"] = gettext(WORDS["intro"], retailer=retailer)
    return {
        **words,
        "purposes": {
            code: {
                "title": register.by_code[code].title.in_locale(locale),
                "description": register.by_code[code].description.in_locale(locale),
                "recipients": [term.label.in_locale(locale) for term in register.by_code[code].recipients],
            }
            for code in purposes
        },
    }


def build_bundle(
    *, base_url: str, register: PurposeRegister, purposes: tuple[str, ...], retailer: str, default_locale: str
) -> Bundle:
    """Assemble the bundle for this deployment (its address, register and words); built once at start-up."""
    for code in purposes:
        purpose = register.by_code.get(code)
        if purpose is None or not purpose.consent_based:
            choices = ", ".join(p.code for p in register.consent_based())
            raise BannerConfigError(
                f"PORTAL_BANNER_PURPOSES: {code!r} is not a consent-based purpose of the register"
                f" (choose from {choices})"
            )
    code = (ASSETS / "banner.js").read_text(encoding="utf-8")
    css = (ASSETS / "banner.css").read_text(encoding="utf-8")
    config = {
        "base": base_url,
        "policy": register.policy_version,
        "privacy": f"{base_url}/privacy",
        "lang": default_locale,
        "days": REMEMBER_DAYS,
        "purposes": list(purposes),
        "css": " ".join(css.split()),
        "i18n": {
            locale: words_in(locale, register=register, purposes=purposes, retailer=retailer)
            for locale in SUPPORTED_LOCALES
        },
    }
    # The version is the hash of everything else, then written into the bundle, which is hashed again for its URL.
    without_version = code.replace(CONFIG_PLACEHOLDER, json.dumps(config, ensure_ascii=False, sort_keys=True))
    version = hashlib.sha256(without_version.encode()).hexdigest()[:12]
    config["version"] = version
    script = code.replace(CONFIG_PLACEHOLDER, json.dumps(config, ensure_ascii=False, sort_keys=True)).encode()
    script_hash = hashlib.sha256(script).hexdigest()
    path = f"/consent/v1/banner-{script_hash[:12]}.js"
    # The stable entry: loads the bundle after the page (defer), passing on the language chosen on the tag.
    loader = (
        "(function(){var s=document.currentScript,n=document.createElement('script');"
        f"n.src={json.dumps(base_url + path)};n.defer=true;n.async=false;"
        "if(s&&s.getAttribute('data-lang'))n.setAttribute('data-lang',s.getAttribute('data-lang'));"
        "document.head.appendChild(n);})();\n"
    ).encode()
    return Bundle(
        script=script,
        script_hash=script_hash,
        banner_version=version,
        loader=loader,
        loader_etag='"' + hashlib.sha256(loader).hexdigest()[:20] + '"',
    )
