"""The purpose register: what the retailer does with personal data, why, on what legal basis, for how long.

One TOML file the retailer edits (`PORTAL_PURPOSES_FILE`, example in portal/config/purposes.toml) drives the consent
page, the privacy policy and the "what we do with your data" page. It is read and validated once at start-up; every
error names the file, the purpose and the field to fix.

The register's wording is the privacy policy: each consent event records the policy version the customer saw and
the hash of the exact wording of the purpose (`PurposeRegister.wording_hash`), so consent can be proved (Art. 7(1)).
That proof is worthless if the wording can change under an unchanged version, hence `[policy] wording_digest`: a
digest of everything the register says, which the loader recomputes and compares. Change a word, and start-up
fails until the version is bumped and the new digest recorded.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from portal.i18n import SUPPORTED_LOCALES, get_locale

# Art. 6(1)(a), (b), (c), (f); (d) vital interests and (e) public task do not apply to a retailer.
LEGAL_BASES = ("consent", "contract", "legal_obligation", "legitimate_interest")
# What a retention period counts from; a purge job reads these, so they are a closed list.
RETENTION_STARTS = (
    "collection",  # each record, from when it was collected (a page view, an order)
    "end_of_relationship",  # the customer's last purchase or contact (CNIL: prospection, 3 years after it)
    "end_of_contract",  # delivery, return or end of warranty of the order
    "end_of_financial_year",  # close of the financial year the record belongs to (Code de commerce L123-22)
)
# The portal itself relies on these purposes being consent-based: it records page views only while the customer
# consents to browsing analytics (ePrivacy Art. 5(3), CNIL guidance on trackers).
CONSENT_REQUIRED = {"browsing_analytics": "the portal records page views only while the customer consents"}
CODE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")  # fits consent_event.purpose (48 characters)
PERIOD = re.compile(r"^(\d+)\s+(day|month|year)s?$")
PURPOSE_FIELDS = {
    "code",
    "title",
    "description",
    "legal_basis",
    "data_categories",
    "recipients",
    "retention",
    "source",
    "can_object",
    "profiling",
}


class RegisterError(ValueError):
    """The purpose register is missing something or holds a bad value; the message says which and where."""


@dataclasses.dataclass(frozen=True)
class LocalizedText:
    """A text the retailer wrote in every supported language; `str()` gives the current request's one."""

    texts: tuple[tuple[str, str], ...]  # (locale, text) in SUPPORTED_LOCALES order: hashable, like the rest

    def in_locale(self, locale: str) -> str:
        for code, text in self.texts:
            if code == locale:
                return text
        return self.texts[0][1]

    def __str__(self) -> str:
        return self.in_locale(get_locale())


@dataclasses.dataclass(frozen=True)
class Term:
    """A data category or a recipient: a code the register's purposes refer to, and its label."""

    code: str
    label: LocalizedText

    def __str__(self) -> str:
        return str(self.label)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Retention:
    """How long a purpose keeps its data: `amount` `unit` counted from `starts`, explained in `text`."""

    amount: int
    unit: str  # days | months | years
    starts: str  # one of RETENTION_STARTS
    text: LocalizedText

    @property
    def months(self) -> int | None:
        """The period in whole months (None for a period in days)."""
        return {"months": self.amount, "years": 12 * self.amount}.get(self.unit)

    def earliest_kept(self, moment: datetime) -> datetime:
        """The oldest starting point still within the period at `moment` (calendar months, clamped to month end)."""
        if self.unit == "days":
            return moment - timedelta(days=self.amount)
        year, month = divmod(moment.year * 12 + moment.month - 1 - (self.months or 0), 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Purpose:
    code: str
    title: LocalizedText
    description: LocalizedText
    legal_basis: str  # one of LEGAL_BASES
    data_categories: tuple[Term, ...]
    recipients: tuple[Term, ...]
    retention: Retention
    source: LocalizedText  # where the data comes from (Art. 14(2)(f), 15(1)(g))
    can_object: bool  # the right to object (Art. 21) applies
    profiling: bool = False  # Art. 15(1)(h): the purpose involves profiling

    @property
    def consent_based(self) -> bool:
        return self.legal_basis == "consent"

    def text(self, field: str, locale: str | None = None) -> str:
        """`title`, `description` or `source` in `locale`, by default the current request's language."""
        value: LocalizedText = getattr(self, field)
        return value.in_locale(locale or get_locale())

    def consent_wording(self, locale: str) -> str:
        """The exact text a customer reads when asked for consent to this purpose, in `locale`."""
        return f"{self.title.in_locale(locale)}\n\n{self.description.in_locale(locale)}"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class PurposeRegister:
    purposes: tuple[Purpose, ...]
    by_code: Mapping[str, Purpose]
    data_categories: Mapping[str, Term]
    recipients: Mapping[str, Term]
    policy_version: str
    policy_date: date
    wording_digest: str
    _wording_hashes: Mapping[tuple[str, str], str]
    # The versions published before this one, oldest first ([[policy.previous]]): consents given under them (the
    # demo's history, a retailer's imported history) record the version in force on their date.
    previous_versions: tuple[tuple[str, date], ...] = ()

    def versions(self) -> tuple[tuple[str, date], ...]:
        """Every policy version with its publication date, oldest first, the current one last."""
        return (*self.previous_versions, (self.policy_version, self.policy_date))

    def is_known_version(self, version: str) -> bool:
        return any(known == version for known, _ in self.versions())

    def version_in_force(self, day: date) -> str | None:
        """The policy version published last on or before `day`; None before the first one."""
        in_force = None
        for version, published in self.versions():
            if published <= day:
                in_force = version
        return in_force

    def __iter__(self) -> Iterator[Purpose]:
        return iter(self.purposes)

    def __len__(self) -> int:
        return len(self.purposes)

    def consent_based(self) -> tuple[Purpose, ...]:
        """The purposes a customer may give or withdraw consent to, in register order."""
        return tuple(purpose for purpose in self.purposes if purpose.consent_based)

    def wording_hash(self, purpose_code: str, locale: str) -> str:
        """SHA-256 (hex) of the consent wording of `purpose_code` in `locale`, stored with each consent event."""
        try:
            return self._wording_hashes[(purpose_code, locale)]
        except KeyError:
            raise KeyError(f"no wording for purpose {purpose_code!r} in {locale!r}") from None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def wording_digest_of(register: PurposeRegister) -> str:
    """Digest of everything the register tells customers, as validated (TOML layout and comments do not count)."""

    def texts(value: LocalizedText) -> dict[str, str]:
        return dict(value.texts)

    document = {
        "purposes": [
            {
                "code": p.code,
                "title": texts(p.title),
                "description": texts(p.description),
                "legal_basis": p.legal_basis,
                "data_categories": [[t.code, texts(t.label)] for t in p.data_categories],
                "recipients": [[t.code, texts(t.label)] for t in p.recipients],
                "retention": [p.retention.amount, p.retention.unit, p.retention.starts, texts(p.retention.text)],
                "source": texts(p.source),
                "can_object": p.can_object,
                "profiling": p.profiling,
            }
            for p in register.purposes
        ]
    }
    return _sha256(json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


class _Reader:
    """Validation helpers that know where they are, so every message names the file, purpose and field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> RegisterError:
        return RegisterError(f"{self.path}: {where}: {message}")

    def localized(self, table: Mapping[str, Any], key: str, where: str) -> LocalizedText:
        """`key.fr`, `key.en`… of `table` (`key` may be dotted, as in retention.text)."""
        value: Any = table
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, dict):
            example = " and ".join(f'{key}.{locale} = "…"' for locale in SUPPORTED_LOCALES)
            raise self.fail(where, f"{key} is missing: write it in every language ({example})")
        return self.texts(value, f"{key}.", where)

    def texts(self, value: Mapping[str, Any], prefix: str, where: str) -> LocalizedText:
        unknown = sorted(set(value) - set(SUPPORTED_LOCALES))
        if unknown:
            raise self.fail(
                where, f"{prefix}{unknown[0]}: unknown language; the portal speaks {', '.join(SUPPORTED_LOCALES)}"
            )
        texts = []
        for locale in SUPPORTED_LOCALES:
            text = value.get(locale)
            if not isinstance(text, str) or not text.strip():
                raise self.fail(where, f"{prefix}{locale} is missing or empty")
            texts.append((locale, text.strip()))
        return LocalizedText(tuple(texts))

    def terms(self, data: Mapping[str, Any], section: str) -> dict[str, Term]:
        table = data.get(section)
        if not isinstance(table, dict) or not table:
            raise self.fail(f"[{section}]", "missing: define each one once, e.g. [" + section + ".code] fr = … en = …")
        terms = {}
        for code, labels in table.items():
            if not CODE.match(code):
                raise self.fail(f"[{section}.{code}]", "codes are lowercase letters, digits and _")
            if not isinstance(labels, dict):
                raise self.fail(f"[{section}.{code}]", "must be a table with fr and en labels")
            terms[code] = Term(code, self.texts(labels, "", f"[{section}.{code}]"))
        return terms

    def term_list(
        self, table: Mapping[str, Any], key: str, known: Mapping[str, Term], section: str, where: str
    ) -> tuple[Term, ...]:
        codes = table.get(key)
        if not isinstance(codes, list) or not codes:
            raise self.fail(where, f"{key} must be a non-empty list of codes defined under [{section}]")
        terms = []
        for code in codes:
            if code not in known:
                raise self.fail(
                    where, f"{key}: {code!r} is not defined under [{section}] (known: {', '.join(sorted(known))})"
                )
            terms.append(known[code])
        if len(set(codes)) != len(codes):
            raise self.fail(where, f"{key} lists the same code twice")
        return tuple(terms)

    def retention(self, table: Mapping[str, Any], where: str) -> Retention:
        value = table.get("retention")
        if not isinstance(value, dict):
            raise self.fail(
                where,
                'retention is missing: e.g. retention.period = "13 months", retention.starts = "collection", '
                "retention.text.fr / retention.text.en",
            )
        period = value.get("period")
        match = PERIOD.match(period.strip()) if isinstance(period, str) else None
        if not match or int(match.group(1)) == 0:
            raise self.fail(
                where,
                f'retention.period must be a positive number of days, months or years, e.g. "13 months", '
                f"not {period!r}",
            )
        starts = value.get("starts")
        if starts not in RETENTION_STARTS:
            raise self.fail(where, f"retention.starts must be one of {', '.join(RETENTION_STARTS)}, not {starts!r}")
        return Retention(
            amount=int(match.group(1)),
            unit=match.group(2) + "s",
            starts=starts,
            text=self.localized(table, "retention.text", where),
        )

    def flag(self, table: Mapping[str, Any], key: str, where: str, default: bool | None = None) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(where, f"{key} must be true or false")
        return value


def _previous_versions(read: _Reader, policy: dict, *, current: tuple[str, date]) -> tuple[tuple[str, date], ...]:
    entries = policy.get("previous", [])
    if not isinstance(entries, list):
        raise read.fail("[policy]", 'previous versions are [[policy.previous]] tables: version = "2024-03", date = …')
    versions: list[tuple[str, date]] = []
    for number, entry in enumerate(entries, start=1):
        where = f"[[policy.previous]] #{number}"
        version, published = (entry.get("version"), entry.get("date")) if isinstance(entry, dict) else (None, None)
        if not isinstance(version, str) or not version.strip() or len(version.strip()) > 32:
            raise read.fail(where, 'version must be a short non-empty string, e.g. "2024-03"')
        if not isinstance(published, date) or isinstance(published, datetime):
            raise read.fail(where, "date must be a TOML date without quotes, e.g. date = 2024-03-01")
        versions.append((version.strip(), published))
    versions.sort(key=lambda v: v[1])
    names = [v for v, _ in versions] + [current[0]]
    if len(set(names)) != len(names):
        raise read.fail("[[policy.previous]]", "each version appears once, the current one included")
    if versions and versions[-1][1] >= current[1]:
        raise read.fail("[[policy.previous]]", f"previous versions are dated before the current one ({current[1]})")
    return tuple(versions)


def load_register(path: Path) -> PurposeRegister:
    """Read and validate the purpose register; raise RegisterError saying what to fix and where."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RegisterError(f"{path}: file not found (set PORTAL_PURPOSES_FILE)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegisterError(f"{path}: not valid TOML: {exc}") from exc
    read = _Reader(path)

    policy = data.get("policy")
    if not isinstance(policy, dict):
        raise read.fail("[policy]", 'missing: version = "2026-01", date = 2026-01-05, wording_digest = "…"')
    version = policy.get("version")
    if not isinstance(version, str) or not version.strip() or len(version.strip()) > 32:
        raise read.fail("[policy]", 'version must be a short non-empty string, e.g. "2026-01"')
    policy_date = policy.get("date")
    if not isinstance(policy_date, date) or isinstance(policy_date, datetime):
        raise read.fail("[policy]", "date must be a TOML date without quotes, e.g. date = 2026-01-05")

    previous = _previous_versions(read, policy, current=(version.strip(), policy_date))
    categories = read.terms(data, "data_categories")
    recipients = read.terms(data, "recipients")

    entries = data.get("purposes")
    if not isinstance(entries, list) or not entries:
        raise read.fail("[[purposes]]", "the register holds no purpose")
    purposes: list[Purpose] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise read.fail(f"purpose #{number}", "each purpose is a [[purposes]] table")
        code = entry.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            raise read.fail(
                f"purpose #{number}", f"code must be lowercase letters, digits and _ (at most 48), not {code!r}"
            )
        where = f"purpose {code!r}"
        if code in seen:
            raise read.fail(where, f"duplicate code: purposes #{seen[code]} and #{number} share it")
        seen[code] = number
        unknown = sorted(set(entry) - PURPOSE_FIELDS)
        if unknown:
            raise read.fail(where, f"unknown field {unknown[0]!r} (expected: {', '.join(sorted(PURPOSE_FIELDS))})")
        legal_basis = entry.get("legal_basis")
        if legal_basis not in LEGAL_BASES:
            raise read.fail(where, f"legal_basis must be one of {', '.join(LEGAL_BASES)}, not {legal_basis!r}")
        if code in CONSENT_REQUIRED and legal_basis != "consent":
            raise read.fail(where, f'legal_basis must be "consent": {CONSENT_REQUIRED[code]}')
        can_object = read.flag(entry, "can_object", where)
        if legal_basis == "legitimate_interest" and not can_object:
            raise read.fail(where, "can_object must be true: Art. 21(1) lets customers object to legitimate interest")
        if legal_basis in ("contract", "legal_obligation") and can_object:
            raise read.fail(where, f"can_object must be false: Art. 21 gives no right to object to {legal_basis}")
        purposes.append(
            Purpose(
                code=code,
                title=read.localized(entry, "title", where),
                description=read.localized(entry, "description", where),
                legal_basis=legal_basis,
                data_categories=read.term_list(entry, "data_categories", categories, "data_categories", where),
                recipients=read.term_list(entry, "recipients", recipients, "recipients", where),
                retention=read.retention(entry, where),
                source=read.localized(entry, "source", where),
                can_object=can_object,
                profiling=read.flag(entry, "profiling", where, default=False),
            )
        )
    for code, reason in CONSENT_REQUIRED.items():
        if code not in seen:
            raise read.fail("[[purposes]]", f"purpose {code!r} is missing: {reason}")

    register = PurposeRegister(
        purposes=tuple(purposes),
        by_code=MappingProxyType({p.code: p for p in purposes}),
        data_categories=MappingProxyType(categories),
        recipients=MappingProxyType(recipients),
        policy_version=version.strip(),
        policy_date=policy_date,
        previous_versions=previous,
        wording_digest="",
        _wording_hashes=MappingProxyType(
            {(p.code, locale): _sha256(p.consent_wording(locale)) for p in purposes for locale in SUPPORTED_LOCALES}
        ),
    )
    digest = wording_digest_of(register)
    if not policy.get("wording_digest"):
        raise read.fail(
            "[policy]", f'wording_digest is missing: once the wording is final, set wording_digest = "{digest}"'
        )
    if policy["wording_digest"] != digest:
        raise read.fail(
            "[policy]",
            f"the wording changed since version {register.policy_version!r} was published (wording_digest does not "
            "match). Consents record the version the customer saw, so publish a new version: set a new [policy] "
            f'version and date, then wording_digest = "{digest}"',
        )
    return dataclasses.replace(register, wording_digest=digest)
