"""Importing consents given elsewhere (tills, the web shop, the CRM), so the ledger holds the customer's whole story.

Each row is one answer as it was given: its own date, channel and policy version, so the proof stays true
(GDPR Art. 7(1)). The ledger's rules hold: only changes are events (an answer repeating the one that stood then is
"unchanged"), and the current state is the latest event by (occurred_at, id). An answer older than the latest one is
inserted as history, the proof of what happened then: it cannot change the current state, as pages, the API and the
ledger all read the latest event. A current-state change is audited one by one and sent as `consent.changed`, as a
click would be; history is audited once per customer and batch, with counts, and sent nowhere (the retailer's
systems already act on the current answer).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlmodel import Session

from portal.audit import record_audits
from portal.clock import CLOCK_SKEW
from portal.consent import ledger
from portal.db import as_connection
from portal.i18n import SUPPORTED_LOCALES, gettext
from portal.imports.kinds import FieldSpec, ImportContext, RowError, RowInvalid, Tally
from portal.imports.lookup import (
    CUSTOMER_FIELD_SPECS,
    CUSTOMER_FIELDS,
    CustomerIndex,
    CustomerRef,
    customer_ref_of,
    is_erased,
    named_by,
)
from portal.imports.values import as_text, read_bool, read_datetime
from portal.models import ConsentEvent, ConsentWording, Customer
from portal.outbox.enqueue import queue_webhooks

T = TypeVar("T")


@dataclasses.dataclass
class ConsentRow:
    """One answer of a customer about one purpose; `check` fills in who the customer is."""

    line: int
    who: CustomerRef
    purpose: str
    granted: bool
    occurred_at: datetime
    channel: str
    policy_version: str
    locale: str | None
    customer_id: int | None = None
    retailer_ref: str | None = None
    erased: bool = False


class ConsentsKind:
    name: ClassVar[str] = "consents"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        *CUSTOMER_FIELD_SPECS,
        FieldSpec("purpose", required=True, help="a consent purpose code of the register, e.g. email_newsletter"),
        FieldSpec("granted", required=True, help="yes when consent was given, no when withdrawn (oui/non, 1/0…)"),
        FieldSpec("occurred_at", required=True, help="when the customer answered"),
        FieldSpec("channel", help="store, web, support, api or import (default: how the data came in)"),
        FieldSpec("policy_version", help="the privacy policy version shown (default: the one in force that day)"),
        FieldSpec("locale", help="fr or en, the language of the wording shown (default: the customer's)"),
    )

    def __init__(self, context: ImportContext) -> None:
        self.context = context
        self.register = context.register

    # --- parse: one row, no database -------------------------------------------------------------------------------

    def parse(self, fields: Mapping[str, Any], line: int) -> ConsentRow:
        errors: list[RowError] = []
        values: dict[str, str | None] = {}
        for spec in self.fields:
            try:
                values[spec.name] = as_text(fields.get(spec.name)) or as_text(self.context.constants.get(spec.name))
            except ValueError as problem:
                errors.append(RowError(spec.name, str(problem)))
                values[spec.name] = None
        who = customer_ref_of(values)
        if who is None and not any(e.field in CUSTOMER_FIELDS for e in errors):
            errors.append(
                RowError(
                    "customer_id", gettext("The row names no customer: give customer_id, email or loyalty_number.")
                )
            )
        for spec in self.fields:
            if spec.required and values[spec.name] is None and not any(e.field == spec.name for e in errors):
                errors.append(RowError(spec.name, gettext("This value is required.")))
        purpose = self._purpose(values["purpose"], errors)
        granted = _read(errors, "granted", values["granted"], read_bool)
        occurred_at = _read(
            errors, "occurred_at", values["occurred_at"], lambda v: read_datetime(v, self.context.formats)
        )
        if occurred_at is not None and occurred_at > self.context.now + CLOCK_SKEW:
            errors.append(RowError("occurred_at", gettext("This date is in the future.")))
            occurred_at = None
        channel = values["channel"] or self.context.source
        if channel not in ledger.CHANNELS:
            errors.append(
                RowError(
                    "channel",
                    gettext(
                        "Unknown channel “%(value)s”: write one of %(channels)s.",
                        value=channel,
                        channels=", ".join(ledger.CHANNELS),
                    ),
                )
            )
        locale = values["locale"]
        if locale is not None and locale not in SUPPORTED_LOCALES:
            errors.append(
                RowError(
                    "locale",
                    gettext(
                        "Unknown language “%(value)s”: write one of %(locales)s.",
                        value=locale,
                        locales=", ".join(SUPPORTED_LOCALES),
                    ),
                )
            )
        version = self._version(values["policy_version"], occurred_at, errors)
        if errors:
            raise RowInvalid(errors)
        assert who and purpose and granted is not None and occurred_at and version  # every problem raised above
        return ConsentRow(
            line=line,
            who=who,
            purpose=purpose,
            granted=granted,
            occurred_at=occurred_at,
            channel=channel,
            policy_version=version,
            locale=locale,
        )

    def _purpose(self, code: str | None, errors: list[RowError]) -> str | None:
        if code is None:
            return None
        purpose = self.register.by_code.get(code)
        if purpose is None:
            known = ", ".join(p.code for p in self.register.consent_based())
            errors.append(
                RowError(
                    "purpose",
                    gettext(
                        "Unknown purpose “%(value)s”: the register's consent purposes are %(known)s.",
                        value=code,
                        known=known,
                    ),
                )
            )
            return None
        if not purpose.consent_based:
            errors.append(
                RowError(
                    "purpose",
                    gettext(
                        "“%(value)s” is not a purpose customers consent to: its legal basis is not consent.", value=code
                    ),
                )
            )
            return None
        return code

    def _version(self, stated: str | None, occurred_at: datetime | None, errors: list[RowError]) -> str | None:
        """The policy version the customer was shown: the stated one, or the one in force on the day of the answer."""
        if stated is not None and not self.register.is_known_version(stated):
            known = ", ".join(version for version, _ in self.register.versions())
            errors.append(
                RowError(
                    "policy_version",
                    gettext(
                        "Unknown policy version “%(value)s”: the register knows %(known)s.", value=stated, known=known
                    ),
                )
            )
            return None
        if occurred_at is None:
            return stated
        day = occurred_at.astimezone(ZoneInfo(self.context.timezone)).date()
        if stated is None:
            in_force = self.register.version_in_force(day)
            if in_force is None:
                first, published = self.register.versions()[0]
                errors.append(
                    RowError(
                        "occurred_at",
                        gettext(
                            "No privacy policy was published yet on that day: the first version, %(version)s, dates "
                            "from %(date)s.",
                            version=first,
                            date=published.isoformat(),
                        ),
                    )
                )
            return in_force
        published = dict(self.register.versions())[stated]
        if published > day:
            errors.append(
                RowError(
                    "policy_version",
                    gettext(
                        "Policy version %(version)s was published on %(date)s, after this answer.",
                        version=stated,
                        date=published.isoformat(),
                    ),
                )
            )
            return None
        return stated

    def group_key(self, record: ConsentRow) -> str | None:
        return None

    # --- check: who the customers are, read-only -----------------------------------------------------------------

    def check(self, session: Session, batch: Sequence[ConsentRow]) -> dict[int, list[RowError]]:
        index = CustomerIndex(session, (row.who for row in batch))
        problems: dict[int, list[RowError]] = {}
        erased: dict[CustomerRef, bool] = {}
        for position, row in enumerate(batch):
            found = index.find(row.who)
            if found is not None:
                row.customer_id, row.retailer_ref, row.erased = found.id, found.retailer_ref, False
                continue
            if row.who not in erased:
                erased[row.who] = is_erased(session, self.context.settings, row.who)
            row.erased = erased[row.who]
            if not row.erased:  # as the API answers 404: a consent is about someone we hold
                problems[position] = [RowError(named_by(row.who), gettext("No customer matches this row."))]
        self._fill_locales(session, [row for row in batch if row.customer_id is not None and row.locale is None])
        problems.update(self._same_moment_conflicts(session, batch))
        return problems

    def _fill_locales(self, session: Session, rows: list[ConsentRow]) -> None:
        """The wording was shown in the customer's preferred language, unless the row says otherwise."""
        ids = sorted({row.customer_id for row in rows if row.customer_id is not None})
        if not ids:
            return
        statement = select(Customer.id, Customer.preferred_language).where(Customer.id.in_(ids))
        language: dict[int, str] = {id_: lang for id_, lang in as_connection(session).execute(statement)}
        for row in rows:
            preferred = language.get(row.customer_id)
            row.locale = preferred if preferred in SUPPORTED_LOCALES else SUPPORTED_LOCALES[0]

    def _same_moment_conflicts(self, session: Session, batch: Sequence[ConsentRow]) -> dict[int, list[RowError]]:
        """Two different answers at the same moment cannot both be true, and which came last is unknown: a person
        decides (the ledger would otherwise take the one imported last as the current state)."""
        ids = {row.customer_id for row in batch if row.customer_id is not None}
        timelines = ledger.consent_timelines(session, customer_ids=ids, purposes={row.purpose for row in batch})
        problems: dict[int, list[RowError]] = {}
        seen: dict[tuple[int, str, datetime], bool] = {}
        message = gettext("A different answer about this purpose is recorded at the same moment.")
        for position, row in enumerate(batch):
            if row.customer_id is None:
                continue
            key = (row.customer_id, row.purpose, row.occurred_at)
            recorded = timelines[(row.customer_id, row.purpose)].answers_at(row.occurred_at)
            if any(answer != row.granted for answer in recorded) or seen.get(key, row.granted) != row.granted:
                problems[position] = [RowError("granted", message)]
            seen.setdefault(key, row.granted)
        return problems

    # --- write: in the caller's transaction ----------------------------------------------------------------------

    def write(self, session: Session, batch: Sequence[ConsentRow], tally: Tally) -> None:
        rows = [row for row in batch if row.customer_id is not None]
        erased = sum(1 for row in batch if row.erased)
        if erased:
            tally.count("dropped", erased, reason="erased")
        if not rows:
            return
        ids = sorted({row.customer_id for row in rows if row.customer_id is not None})
        # Locks the customers' rows on PostgreSQL, as a click does: a click and an import cannot both decide the
        # latest answer.
        session.execute(select(Customer.id).where(Customer.id.in_(ids)).with_for_update()).all()
        purposes = {row.purpose for row in rows}
        timelines = ledger.consent_timelines(session, customer_ids=ids, purposes=purposes)
        before = {key: bool(timeline.answers and timeline.answers[-1]) for key, timeline in timelines.items()}
        wordings = self._wordings(session, rows)
        events: list[dict[str, Any]] = []
        history: dict[int, list[str]] = defaultdict(list)
        latest: dict[tuple[int, str], ConsentRow] = {}
        audits: list[dict[str, Any]] = []
        for row in sorted(rows, key=lambda r: (r.customer_id, r.purpose, r.occurred_at, r.line)):
            assert row.customer_id is not None
            timeline = timelines[(row.customer_id, row.purpose)]
            recorded = timeline.answers_at(row.occurred_at)
            if recorded:
                # The same answer is already there (a re-import), or a different one arrived since the check.
                if row.granted in recorded:
                    tally.count("unchanged")
                else:  # two rows of one file in different batches, or a click since the check: a person decides
                    tally.count("dropped", reason="conflict")
                    tally.note(
                        gettext(
                            "Line %(line)s: a different answer about “%(purpose)s” is recorded at the same moment; "
                            "it was not imported.",
                            line=row.line,
                            purpose=row.purpose,
                        )
                    )
                continue
            if timeline.stood_at(row.occurred_at) == row.granted:
                tally.count("unchanged")  # only changes are events: it repeats the answer that stood then
                continue
            last = timeline.latest_at()
            is_latest = last is None or row.occurred_at > last
            timeline.add(row.occurred_at, row.granted)
            events.append(self._event(row, wordings))
            tally.count("created")
            if is_latest:
                latest[(row.customer_id, row.purpose)] = row
                audits.append(self._change_audit(row))
            else:
                history[row.customer_id].append(row.purpose)
        if events:
            session.execute(insert(ConsentEvent.__table__), events)
        # As a click would: one audit event per change of the current state (who changed what, which way). History
        # changes no state: one event per customer says how many earlier answers were added.
        audits += [
            {
                "actor": self.context.actor,
                "action": "consent.history_recorded",
                "target": f"customer:{customer_id}",
                "detail": {"count": len(codes), "purposes": sorted(set(codes)), "source": self.context.source},
            }
            for customer_id, codes in sorted(history.items())
        ]
        record_audits(session, audits, now=self.context.now)
        changed = [row for key, row in sorted(latest.items()) if before.get(key, False) != row.granted]
        queue_webhooks(
            session, topic="consent.changed", payloads=[_webhook(row) for row in changed], now=self.context.now
        )

    def _wordings(self, session: Session, rows: list[ConsentRow]) -> dict[tuple[str, str, str], str | None]:
        """The hash of the wording each answer was given under, by (purpose, locale, version).

        The current version's wording is the register's, kept in `consent_wording` as a click keeps it. An earlier
        version's is known only if the portal stored its text while it was current; when it never did (the policy
        predates the portal), the hash is NULL rather than the hash of a text we cannot show: a proof must point to
        the words the customer read, or honestly to none.
        """
        wanted = {(row.purpose, row.locale or SUPPORTED_LOCALES[0], row.policy_version) for row in rows}
        hashes: dict[tuple[str, str, str], str | None] = {}
        older = sorted({version for _, _, version in wanted if version != self.register.policy_version})
        if older:
            statement = select(
                ConsentWording.purpose, ConsentWording.locale, ConsentWording.policy_version, ConsentWording.hash
            ).where(ConsentWording.policy_version.in_(older))
            for purpose, locale, version, digest in as_connection(session).execute(statement):
                hashes[(purpose, locale, version)] = digest
        for purpose, locale, version in sorted(wanted):
            if version == self.register.policy_version:
                hashes[(purpose, locale, version)] = ledger.keep_wording(
                    session, register=self.register, purpose=purpose, locale=locale, now=self.context.now
                )
        return hashes

    def _event(self, row: ConsentRow, wordings: Mapping[tuple[str, str, str], str | None]) -> dict[str, Any]:
        locale = row.locale or SUPPORTED_LOCALES[0]
        return {
            "customer_id": row.customer_id,
            "purpose": row.purpose,
            "granted": row.granted,
            "occurred_at": row.occurred_at,
            "channel": row.channel,
            "actor": self.context.actor[:64],
            "policy_version": row.policy_version,
            "wording_hash": wordings.get((row.purpose, locale, row.policy_version)),
        }

    def _change_audit(self, row: ConsentRow) -> dict[str, Any]:
        return {
            "actor": self.context.actor,
            "action": "consent.granted" if row.granted else "consent.withdrawn",
            "target": f"customer:{row.customer_id}",
            "detail": {"purpose": row.purpose, "channel": row.channel, "source": self.context.source},
        }


def _webhook(row: ConsentRow) -> dict[str, Any]:
    """The `consent.changed` event a click sends (ledger.record_consent): the retailer's systems must stop (or may
    start) using the data for this purpose."""
    return {
        "customer_id": row.customer_id,
        "retailer_customer_id": row.retailer_ref,
        "purpose": row.purpose,
        "granted": row.granted,
        "occurred_at": row.occurred_at.isoformat(),
        "channel": row.channel,
        "policy_version": row.policy_version,
    }


def _read(errors: list[RowError], field: str, text: str | None, reader: Callable[[str], T]) -> T | None:
    """`reader(text)`, or None with the reader's message added to `errors`; None for a missing value."""
    if text is None:
        return None
    try:
        return reader(text)
    except ValueError as problem:
        errors.append(RowError(field, str(problem)))
        return None
