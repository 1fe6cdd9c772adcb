"""The demo's privacy requests: fourteen months of answered requests and an open queue, with their timelines.

Built the way the workflow would have left them (`portal.requests.service.file_request`, `portal.requests.workflow`,
`portal.erasure.service`): each step is a `request_event` and an `audit_event` with the same actor, kind and detail,
and `version` counts the changes. Nothing else is touched: no outbox email (the demo mailbox would deliver them), no
tombstone (closed erasure requests were refused or withdrawn), no consent withdrawn (objections were honoured only
for customers who consent to nothing), and every restriction that was applied has been lifted since.

Dates count back from `now`, the wall clock when the demo is generated without one: whenever the demo runs, its
queue holds new requests, requests due this week, overdue ones and extended ones. The draws come from their own
generator, so the shape is the same every time (and the rows too, for a given `now`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, text

from portal.labels import system_note
from portal.models import AuditEvent, PrivacyRequest, RequestEvent, StaffUser, email_key
from portal.requests.deadlines import due_at_for
from portal.requests.service import REFERENCE_ALPHABET

Row = dict[str, Any]

# The demo retailer is in France: its shops open, and its dates fall, in Paris time (the default PORTAL_TIMEZONE).
DEMO_TIMEZONE = "Europe/Paris"
PARIS = ZoneInfo(DEMO_TIMEZONE)
HISTORY_DAYS = 425  # fourteen months of answered requests
CLOSED_COUNT = 110
LEO_ID = 2  # leo.bernard@example.org: one answered request and one waiting for his answer
DEMO_CUSTOMER_IDS = frozenset({1, 2, 3})  # the README's accounts get nothing drawn (Camille's pages stay as documented)

TYPE_WEIGHTS = {
    "access": 30,
    "rectification": 20,
    "erasure": 12,
    "portability": 10,
    "objection": 11,
    "restriction": 5,
    "other": 12,
}
CHANNEL_WEIGHTS: dict[str, dict[str, int]] = {
    "access": {"web": 35, "email": 20, "store": 20, "support": 15, "phone": 10},
    "rectification": {"web": 50, "store": 20, "support": 20, "phone": 10},
    "erasure": {"web": 50, "email": 20, "support": 15, "store": 10, "phone": 5},
    "portability": {"web": 80, "email": 20},
    "objection": {"web": 45, "email": 25, "phone": 15, "store": 15},
    "restriction": {"web": 70, "email": 30},
    "other": {"web": 50, "email": 30, "phone": 20},
}

# The open queue: (how many, status, age in days, extended). Deadlines fall one month after receipt, so 24–30 days
# old is due this week and 33 days or more is overdue.
OPEN_PLAN: tuple[tuple[int, str, tuple[int, int], bool], ...] = (
    (8, "received", (0, 6), False),
    (2, "received", (24, 29), False),
    (2, "received", (33, 40), False),
    (8, "in_progress", (3, 22), False),
    (4, "in_progress", (24, 29), False),
    (2, "in_progress", (33, 45), False),
    (3, "in_progress", (20, 50), True),
    (6, "awaiting_customer", (4, 22), False),
    (2, "awaiting_customer", (24, 29), False),
    (1, "awaiting_customer", (34, 40), False),
    (1, "awaiting_customer", (25, 45), True),
)


# --- What customers and staff wrote (data, in the customer's language) -------------------------------------------

TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "fr": {
        "message_erasure": (
            "Je n'utilise plus mon compte, merci de supprimer toutes mes données.",
            "Je déménage à l'étranger, je souhaite que vous effaciez mes informations.",
            "Merci de supprimer mon compte fidélité et tout ce qui va avec.",
        ),
        "message_objection": (
            "Je ne veux plus recevoir vos offres, ni par email ni par SMS.",
            "Je m'oppose à l'utilisation de mes achats pour me proposer des offres.",
        ),
        "message_access": (
            "Bonjour, je souhaite recevoir une copie de toutes les données que vous avez sur moi.",
            "Pouvez-vous m'envoyer la liste de mes données personnelles et à qui vous les transmettez ?",
        ),
        "message_other": (
            "Combien de temps gardez-vous mes tickets de caisse ?",
            "Est-ce que vous transmettez mon adresse à vos transporteurs ?",
            "Pourquoi ai-je reçu un SMS alors que je n'ai rien accepté ?",
            "Qui a accès à mon historique d'achats en magasin ?",
        ),
        "comment_postal_address": ("J'ai déménagé le mois dernier.", ""),
        "comment_phone": ("J'ai changé de numéro.", ""),
        "comment_last_name": ("Nom d'usage depuis mon mariage.", "Mon nom est mal orthographié."),
        "comment_birth_date": ("Erreur de saisie à la création de la carte en magasin.", ""),
        "comment_loyalty_number": ("J'ai reçu une nouvelle carte, l'ancienne est perdue.",),
        # (the agent's question, the customer's answer)
        "exchange_rectification": (
            "Pouvez-vous nous envoyer un justificatif (facture ou pièce d'identité) pour cette correction ?"
            "|Je vous ai envoyé le justificatif par e-mail ce matin.",
            "Pouvez-vous confirmer la nouvelle valeur ? Celle indiquée ne correspond à aucun format connu."
            "|Oui, c'est bien celle-ci, je l'ai vérifiée.",
        ),
        "exchange": (
            "Pour retrouver vos achats en magasin, pouvez-vous nous indiquer le numéro de votre carte de fidélité ?"
            "|C'est la carte indiquée sur mon profil.",
            "Votre demande concerne-t-elle aussi les achats faits avec votre ancienne adresse e-mail ?"
            "|Oui, les deux adresses s'il vous plaît.",
            "Pouvez-vous préciser de quelle période il s'agit ?|Depuis janvier de l'année dernière.",
        ),
        "note": (
            "Vérifié en caisse : les tickets sont bien rattachés à la carte.",
            "Appel du client pour confirmer sa demande.",
            "Doublon d'une demande par e-mail, traitée ici.",
        ),
        "extension": (
            "Votre demande porte sur plusieurs années d'achats en magasin : nous devons interroger les archives de "
            "caisse de plusieurs magasins.",
            "Nous recevons en ce moment un nombre exceptionnel de demandes ; nous vous répondrons au plus tard à la "
            "nouvelle date indiquée.",
        ),
        "outcome_access": (
            "Nous vous avons envoyé par e-mail une copie de toutes les données que nous détenons sur vous, avec leurs "
            "finalités et leurs durées de conservation.",
        ),
        "outcome_rectification": ("La correction demandée a été faite dans votre profil.",),
        "outcome_portability": (
            "Votre archive (fichiers CSV et JSON) vous a été envoyée par un lien de téléchargement valable 7 jours.",
        ),
        "outcome_other": (
            "Vos tickets de caisse sont conservés 10 ans pour notre comptabilité, détachés de votre compte si vous "
            "le supprimez. Tout est détaillé sur la page « Vos données et leur utilisation ».",
            "Nos transporteurs reçoivent votre nom, votre adresse de livraison et votre téléphone, uniquement pour "
            "la livraison de la commande.",
        ),
        "reject_erasure": (
            "Une réclamation sur votre commande est en cours : nous devons conserver vos données jusqu'à sa "
            "résolution (art. 17, 3, e du RGPD). Vous pouvez introduire une réclamation auprès de la CNIL.",
        ),
        "reject_access": (
            "Nous vous avons envoyé une copie complète de vos données il y a trois semaines et rien n'a changé "
            "depuis (art. 12, 5 du RGPD). Vous pouvez introduire une réclamation auprès de la CNIL.",
        ),
        "reject_rectification": (
            "Le justificatif reçu ne permet pas de confirmer la valeur demandée. Vous pouvez nous en envoyer un autre "
            "ou introduire une réclamation auprès de la CNIL.",
        ),
        "reject_objection": (
            "Les données concernées servent à la garantie de votre achat en cours, pas à la prospection : nous "
            "devons les conserver. Vous pouvez introduire une réclamation auprès de la CNIL.",
        ),
        "lifted": ("Vérification terminée : les données contestées étaient exactes.",),
    },
    "en": {
        "message_erasure": (
            "I no longer use my account, please delete all my data.",
            "I'm moving abroad and would like you to erase my details.",
        ),
        "message_objection": ("Please stop sending me offers, by email or text.",),
        "message_access": ("Hello, I would like a copy of all the personal data you hold about me.",),
        "message_other": (
            "How long do you keep my receipts?",
            "Do you share my address with your delivery companies?",
        ),
        "comment_postal_address": ("I moved last month.", ""),
        "comment_phone": ("New number.", ""),
        "comment_last_name": ("My surname is misspelt.", ""),
        "comment_birth_date": ("Typo when the card was created in store.", ""),
        "comment_loyalty_number": ("I got a new card, the old one is lost.",),
        "exchange_rectification": (
            "Could you send us a document (bill or ID) supporting this correction?"
            "|I emailed you a utility bill this morning.",
        ),
        "exchange": (
            "To find your in-store purchases, could you tell us your loyalty card number?"
            "|It's the card shown on my profile.",
            "Which period is your request about?|Since January last year.",
        ),
        "note": ("Checked at the till: the receipts are linked to the card.", "Customer called to confirm."),
        "extension": (
            "Your request covers several years of in-store purchases: we need to search the till archives of "
            "several stores.",
        ),
        "outcome_access": (
            "We emailed you a copy of all the data we hold about you, with what we use it for and how long we keep it.",
        ),
        "outcome_rectification": ("The correction you asked for has been made to your profile.",),
        "outcome_portability": ("Your archive (CSV and JSON files) was sent to you as a download link valid 7 days.",),
        "outcome_other": (
            "Receipts are kept for 10 years for our accounts, detached from you if you delete your account. The "
            '"Your data and how we use it" page has the details.',
        ),
        "reject_erasure": (
            "A complaint about your order is still open: we must keep your data until it is settled (GDPR Art. "
            "17(3)(e)). You may complain to the ICO or the CNIL.",
        ),
        "reject_access": (
            "We sent you a full copy of your data three weeks ago and nothing has changed since (GDPR Art. 12(5)). "
            "You may complain to the ICO or the CNIL.",
        ),
        "reject_rectification": (
            "The document we received does not confirm the value you asked for. You may send another one or "
            "complain to the ICO or the CNIL.",
        ),
        "reject_objection": (
            "This data serves the guarantee of your current purchase, not marketing: we must keep it. You may "
            "complain to the ICO or the CNIL.",
        ),
        "lifted": ("Check finished: the data you contested was accurate.",),
    },
}
RESTRICTION_GROUNDS = ("accuracy", "unlawful", "legal_claims", "objection_pending")
LEO_MESSAGE = "Est-ce que vous transmettez mes données à vos partenaires de livraison ?"
LEO_QUESTION = (
    "Bonjour, parlez-vous des livraisons à domicile ou du retrait en magasin ? Les informations transmises ne sont "
    "pas les mêmes."
)


# --- Staff ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoStaff:
    """The ids of the demo staff accounts (`ensure_demo_staff` created them just before)."""

    agent: int
    dpo: int
    store: int | None  # Sarah Martin, at LYO-01
    store_id: int | None  # her store


def demo_staff(connection: Connection, emails: Sequence[str]) -> DemoStaff:
    """Look the demo staff up by address: agent, DPO, store staff, in `DEMO_STAFF` order."""
    table = StaffUser.__table__
    found = {
        row.email_key: row
        for row in connection.execute(
            select(table.c.id, table.c.email_key, table.c.store_id).where(
                table.c.email_key.in_([email_key(e) for e in emails])
            )
        )
    }
    agent, dpo, store = (found.get(email_key(e)) for e in emails[:3])
    if agent is None or dpo is None:
        raise LookupError("the demo agent and DPO accounts must exist before the demo requests are written")
    return DemoStaff(agent.id, dpo.id, store.id if store else None, store.store_id if store else None)


# --- Building ------------------------------------------------------------------------------------------------------


@dataclass
class RequestRows:
    requests: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    audits: list[Row] = field(default_factory=list)


@dataclass
class _Customer:
    id: int
    created_at: datetime
    language: str
    row: Row
    consents: bool  # consents to at least one purpose now


class _Builder:
    def __init__(
        self,
        rng: random.Random,
        now: datetime,
        customers: list[Row],
        consent_events: list[Row],
        staff: DemoStaff,
        shop_for_city: Mapping[str, int],
        shop_ids: Sequence[int],
    ) -> None:
        self.rng = rng
        self.now = now
        self.staff = staff
        self.shop_for_city = shop_for_city
        self.shop_ids = shop_ids
        self.rows = RequestRows()
        self.references: set[str] = set()
        latest: dict[tuple[int, str], tuple[datetime, int, bool]] = {}
        for event in consent_events:
            key = (event["customer_id"], event["purpose"])
            if key not in latest or (event["occurred_at"], event["id"]) > latest[key][:2]:
                latest[key] = (event["occurred_at"], event["id"], event["granted"])
        consenting = {customer_id for (customer_id, _), (*_, granted) in latest.items() if granted}
        self.customers = [
            _Customer(row["id"], row["created_at"], row["preferred_language"], row, row["id"] in consenting)
            for row in customers
            if row["id"] not in DEMO_CUSTOMER_IDS and row["erased_at"] is None
        ]
        self.by_id = {row["id"]: row for row in customers}
        self.busy: set[int] = set()  # customers with an open request: one each, so no "already requested" clash

    # Drawing

    def text(self, language: str, key: str) -> str:
        return self.rng.choice(TEXTS.get(language, TEXTS["en"])[key])

    def reference(self) -> str:
        while True:
            chars = "".join(self.rng.choice(REFERENCE_ALPHABET) for _ in range(8))
            reference = f"R-{chars[:4]}-{chars[4:]}"
            if reference not in self.references:
                self.references.add(reference)
                return reference

    def customer(
        self, before: datetime, *, open_: bool, accept: Callable[[_Customer], bool] | None = None
    ) -> _Customer:
        while True:
            candidate = self.rng.choice(self.customers)
            if candidate.created_at > before - timedelta(days=2) or candidate.id in self.busy:
                continue
            if accept is None or accept(candidate):
                if open_:
                    self.busy.add(candidate.id)
                return candidate

    def store_of(self, customer: _Customer) -> int:
        return self.shop_for_city.get(customer.row["city"] or "") or self.rng.choice(self.shop_ids)

    def received_at(self, age_days: float, channel: str) -> datetime:
        """A plausible moment `age_days` ago: web at any waking hour, other channels in opening hours."""
        day = (self.now - timedelta(days=age_days)).astimezone(PARIS).date()
        if channel == "web":
            seconds = self.rng.randint(7 * 3600, 23 * 3600)
        else:
            while day.weekday() == 6:
                day -= timedelta(days=1)
            seconds = self.rng.randint(9 * 3600 + 1800, 18 * 3600)
        at = _local(day, seconds)
        if at > self.now - timedelta(minutes=30):  # today, later than now: earlier today
            at = self.now - timedelta(minutes=self.rng.randint(30, 180))
        return at

    def details(self, type_: str, channel: str, customer: _Customer, *, applied: bool) -> dict | None:
        language = customer.language
        if type_ == "rectification":
            return self.correction(customer, applied=applied)
        if type_ == "other":  # a question, whoever wrote it down
            return {"message": self.text(language, "message_other")}
        if channel != "web":
            if type_ in ("access", "erasure", "objection") and channel == "email":
                return {"message": self.text(language, f"message_{type_}")}
            return None
        if type_ in ("erasure", "objection"):
            found: dict[str, object] = {"confirmed": True}
            if self.rng.random() < 0.5:
                found["message"] = self.text(language, f"message_{type_}")
            return found
        if type_ == "restriction":
            return {"confirmed": True, "ground": self.rng.choice(RESTRICTION_GROUNDS)}
        return None

    def correction(self, customer: _Customer, *, applied: bool) -> dict:
        """What the profile page files: the field, the value the customer proposes, a comment. An applied
        correction proposed the value the profile holds now; an open one proposes a new value."""
        row, rng = customer.row, self.rng
        held = [
            name for name in ("postal_address", "phone", "last_name", "birth_date", "loyalty_number") if _has(row, name)
        ]
        name = rng.choice(held or ["last_name"])
        if applied:
            proposed = _current(row, name)
        elif name == "postal_address":
            street = rng.choice(("rue des Lilas", "avenue de la Gare", "rue Victor Hugo"))
            proposed = f"{rng.randint(1, 90)} {street}, {row['postal_code']} {row['city']}"
        elif name == "phone":
            proposed = (
                f"+3363998{rng.randint(0, 9999):04d}"
                if row["country"] != "GB"
                else f"+447700900{rng.randint(0, 999):03d}"
            )
        elif name == "birth_date":
            proposed = (row["birth_date"] + timedelta(days=rng.choice((-365, 1, 30, 366)))).strftime("%d/%m/%Y")
        elif name == "loyalty_number":
            proposed = f"AUB-{rng.randint(10_000_000, 99_999_999)}"
        else:
            proposed = f"{row['last_name']}-{rng.choice(('Martin', 'Roux', 'Garnier', 'Smith'))}"
        return {
            "field": name,
            "proposed_value": proposed,
            "comment": self.text(customer.language, f"comment_{name}"),
        }

    # Writing one request

    def request(
        self,
        *,
        customer: _Customer,
        type_: str,
        channel: str,
        received_at: datetime,
        details: dict | None,
    ) -> _Timeline:
        store_id = self.store_of(customer) if channel == "store" else None
        if channel == "web":
            filer = f"customer:{customer.id}"
        elif channel == "store" and store_id == self.staff.store_id and self.staff.store is not None:
            filer = f"staff:{self.staff.store}"
        else:
            filer = f"staff:{self.staff.agent}"  # typed in by the support team (a store's form, an email, a call)
        row: Row = {
            "id": len(self.rows.requests) + 1,
            "reference": self.reference(),
            "customer_id": customer.id,
            "type": type_,
            "channel": channel,
            "store_id": store_id,
            "status": "received",
            "received_at": received_at,
            "due_at": due_at_for(received_at, timezone=DEMO_TIMEZONE),
            "extended_due_at": None,
            "extension_reason": None,
            "assignee_id": None,
            "details": details,
            "outcome": None,
            "closed_at": None,
            "version": 1,
            "submission_key": None,
        }
        self.rows.requests.append(row)
        timeline = _Timeline(self, row, customer)
        timeline.event(received_at, filer, "received")
        timeline.audit(received_at, filer, "request.received", {"type": type_, "channel": channel})
        return timeline

    def assignee(self, type_: str) -> int:
        dpo_share = 0.45 if type_ in ("erasure", "objection", "restriction") else 0.15
        return self.staff.dpo if self.rng.random() < dpo_share else self.staff.agent


class _Timeline:
    """One request's steps, written as the workflow writes them (event, audit with from/to/version, version + 1)."""

    def __init__(self, builder: _Builder, row: Row, customer: _Customer) -> None:
        self.builder = builder
        self.row = row
        self.customer = customer
        self.target = f"request:{row['reference']}"
        self.answer = ""  # the customer's answer to the pending question

    def event(self, at: datetime, actor: str, kind: str, note: str | None = None, *, visible: bool = True) -> None:
        self.builder.rows.events.append(
            {
                "request_id": self.row["id"],
                "occurred_at": at,
                "actor": actor,
                "kind": kind,
                "note": note,
                "visible_to_customer": visible,
            }
        )

    def audit(self, at: datetime, actor: str, action: str, detail: dict | None) -> None:
        self.builder.rows.audits.append(
            {"occurred_at": at, "actor": actor, "action": action, "target": self.target, "detail": detail}
        )

    def change(
        self,
        at: datetime,
        actor: str,
        kind: str,
        action: str,
        *,
        note: str | None = None,
        visible: bool = True,
        detail: dict | None = None,
        **changes: object,
    ) -> None:
        previous = self.row["status"]
        self.row.update(changes)
        self.row["version"] += 1
        self.event(at, actor, kind, note, visible=visible)
        self.audit(
            at,
            actor,
            action,
            {"from": previous, "to": self.row["status"], "version": self.row["version"], **(detail or {})},
        )

    # The workflow's steps

    def assign(self, at: datetime, actor: str, staff_id: int) -> None:
        self.change(
            at,
            actor,
            "assigned",
            "request.assigned",
            note=f"staff:{staff_id}",
            visible=False,
            detail={"assignee": f"staff:{staff_id}"},
            assignee_id=staff_id,
        )

    def start(self, at: datetime, actor: str) -> None:
        self.change(at, actor, "started", "request.started", status="in_progress")

    def ask(self, at: datetime, actor: str, question: str | None = None) -> None:
        if question is None:
            key = "exchange_rectification" if self.row["type"] == "rectification" else "exchange"
            question, self.answer = self.builder.text(self.customer.language, key).split("|")
        text = question
        self.change(at, actor, "question", "request.question_asked", note=text, status="awaiting_customer")

    def reply(self, at: datetime) -> None:
        text = self.answer
        self.change(
            at, f"customer:{self.customer.id}", "reply", "request.customer_replied", note=text, status="in_progress"
        )

    def note(self, at: datetime, actor: str) -> None:
        text = self.builder.text(self.customer.language, "note")
        self.change(at, actor, "note", "request.note_added", note=text, visible=False)

    def extend(self, at: datetime, actor: str, months: int) -> None:
        reason = self.builder.text(self.customer.language, "extension")
        new_due = due_at_for(self.row["received_at"], timezone=DEMO_TIMEZONE, months=1 + months)
        self.change(
            at,
            actor,
            "extended",
            "request.extended",
            note=reason,
            detail={"months": months, "due": new_due.isoformat()},
            extended_due_at=new_due,
            extension_reason=reason,
        )

    def restrict(self, at: datetime, actor: str) -> None:
        # restriction.apply_restriction: a step and an audit event; completing the request is what bumps the version.
        self.event(at, actor, "restricted")
        self.audit(at, actor, "customer.restricted", {"customer": self.customer.id, "already": False})

    def lift(self, at: datetime, actor: str) -> None:
        self.row["version"] += 1
        self.event(at, actor, "restriction_lifted", self.builder.text(self.customer.language, "lifted"))
        self.audit(at, actor, "customer.restriction_lifted", {"customer": self.customer.id})

    def complete(self, at: datetime, actor: str, outcome: str) -> None:
        self.change(
            at, actor, "completed", "request.completed", note=outcome, status="completed", outcome=outcome, closed_at=at
        )

    def reject(self, at: datetime, actor: str, reason: str) -> None:
        self.change(
            at, actor, "rejected", "request.rejected", note=reason, status="rejected", outcome=reason, closed_at=at
        )

    def cancel(self, at: datetime) -> None:
        self.change(
            at, f"customer:{self.customer.id}", "cancelled", "request.cancelled", status="cancelled", closed_at=at
        )


def build_requests(
    rng: random.Random,
    *,
    now: datetime,
    customers: list[Row],
    consent_events: list[Row],
    staff: DemoStaff,
    shop_for_city: Mapping[str, int],
    shop_ids: Sequence[int],
) -> RequestRows:
    builder = _Builder(rng, now, customers, consent_events, staff, shop_for_city, shop_ids)
    _leo(builder)
    for index in range(CLOSED_COUNT - 1):
        _closed(builder, index)
    for count, status, ages, extended in OPEN_PLAN:
        for _ in range(count):
            _open(builder, status, ages, extended=extended)
    rows = builder.rows
    # Ids in time order, as the tables would have numbered them.
    rows.events.sort(key=lambda event: (event["occurred_at"], event["request_id"]))
    rows.audits.sort(key=lambda audit: audit["occurred_at"])
    return rows


def _leo(builder: _Builder) -> None:
    """Léo's answered access request and his question, waiting for his answer, so the customer side shows both."""
    leo = builder.by_id[LEO_ID]
    customer = _Customer(LEO_ID, leo["created_at"], leo["preferred_language"], leo, True)
    agent, dpo = f"staff:{builder.staff.agent}", f"staff:{builder.staff.dpo}"
    received = builder.received_at(122, "web")
    access = builder.request(customer=customer, type_="access", channel="web", received_at=received, details=None)
    access.assign(_office(received + timedelta(days=1)), dpo, builder.staff.agent)
    access.start(_office(received + timedelta(days=1, hours=2)), agent)
    access.complete(_office(received + timedelta(days=9)), agent, TEXTS["fr"]["outcome_access"][0])

    received = builder.received_at(6, "web")
    question = builder.request(
        customer=customer, type_="other", channel="web", received_at=received, details={"message": LEO_MESSAGE}
    )
    question.assign(_office(received + timedelta(days=1)), agent, builder.staff.agent)
    question.start(_office(received + timedelta(days=1, minutes=5)), agent)
    question.ask(min(_office(received + timedelta(days=4)), builder.now - timedelta(hours=1)), agent, LEO_QUESTION)


def _draw_type(builder: _Builder, *, allow: Callable[[str], bool]) -> tuple[str, str]:
    while True:
        type_ = builder.rng.choices(tuple(TYPE_WEIGHTS), tuple(TYPE_WEIGHTS.values()))[0]
        if allow(type_):
            weights = CHANNEL_WEIGHTS[type_]
            return type_, builder.rng.choices(tuple(weights), tuple(weights.values()))[0]


def _duration(rng: random.Random) -> float:
    """Days to answer: a median near a week, a tail towards the deadline."""
    return min(28.0, max(0.3, rng.lognormvariate(math.log(7), 0.75)))


def _closed(builder: _Builder, index: int) -> None:
    rng = builder.rng
    # Spread evenly over the fourteen months, so that every month has its median and 90th percentile.
    age = 3 + (HISTORY_DAYS - 3) * (index + rng.random()) / (CLOSED_COUNT - 1)
    # Restrictions were lifted since (the demo restricts nobody): only old enough ones.
    type_, channel = _draw_type(builder, allow=lambda t: t != "restriction" or age > 90)
    agent_id = builder.assignee(type_)
    actor = f"staff:{agent_id}"
    late = extended = False
    if type_ == "portability" and channel == "web":
        outcome = "cancelled" if rng.random() < 0.15 else "downloaded"
        days = rng.uniform(0.001, 0.004)
    elif type_ == "erasure":  # nobody is erased in the demo: withdrawn or refused
        outcome = "cancelled" if channel == "web" and rng.random() < 0.5 else "rejected"
        days = rng.uniform(0.2, 4) if outcome == "cancelled" else _duration(rng)
    else:
        draw = rng.random()
        if channel == "web" and draw < 0.05:
            outcome, days = "cancelled", rng.uniform(0.1, 3)
        elif draw < 0.12 and type_ in ("access", "rectification", "objection"):
            outcome, days = "rejected", _duration(rng)
        else:
            outcome, days = "completed", _duration(rng)
        extended = outcome == "completed" and rng.random() < 0.06
        late = not extended and outcome != "cancelled" and rng.random() < 0.05
        if extended:
            days = rng.uniform(35, 55)
        elif late:
            days = rng.uniform(33, 40)
    age = max(age, days + rng.uniform(0.5, 4))
    objection_done = type_ == "objection" and outcome == "completed"
    customer = builder.customer(
        builder.now - timedelta(days=age), open_=False, accept=(lambda c: not c.consents) if objection_done else None
    )
    received = builder.received_at(age, channel)
    closed = received + timedelta(days=days)
    timeline = builder.request(
        customer=customer,
        type_=type_,
        channel=channel,
        received_at=received,
        details=builder.details(type_, channel, customer, applied=outcome == "completed"),
    )
    language = customer.language
    if outcome == "downloaded":
        at = received + timedelta(days=days)
        timeline.complete(at, f"customer:{customer.id}", system_note("downloaded"))
        files = {"via": "portal", "files": 9, "rows": rng.randint(300, 4000), "bytes": rng.randint(80_000, 900_000)}
        timeline.audit(at, f"customer:{customer.id}", "portability.archive_delivered", files)
        return
    if outcome == "cancelled":
        at = received + timedelta(days=days)
        if type_ == "portability":  # the download was interrupted, which withdraws the portal's request
            timeline.audit(
                at,
                f"customer:{customer.id}",
                "portability.download_interrupted",
                {"via": "portal", "bytes": rng.randint(2_000, 60_000)},
            )
        timeline.cancel(at)
        return
    # Worked on by staff: assigned and started early, perhaps a question and a note, then the answer.
    steps: list[tuple[str, float]] = [("assign", rng.uniform(0.02, 0.2)), ("start", rng.uniform(0.2, 0.35))]
    if rng.random() < 0.3:
        steps += [("ask", rng.uniform(0.35, 0.6)), ("reply", rng.uniform(0.6, 0.85))]
    if rng.random() < 0.2:
        steps.append(("note", rng.uniform(0.35, 0.95)))
    if type_ == "restriction":
        steps.append(("restrict", 0.98))
    moments = {name: _office(received + timedelta(days=days * fraction)) for name, fraction in steps}
    if extended:  # once work started, before the original deadline
        moments["extend"] = max(_office(received + timedelta(days=rng.uniform(10, 25))), moments["start"])
    order = sorted(moments, key=lambda name: moments[name])
    closed = max(_office(closed), *moments.values()) + timedelta(minutes=5)
    assigner = f"staff:{builder.staff.dpo}" if rng.random() < 0.5 else actor
    for name in order:
        at = max(moments[name], received + timedelta(minutes=2))
        if name == "assign":
            timeline.assign(at, assigner, agent_id)
        elif name == "start":
            timeline.start(at, actor)
        elif name == "ask":
            timeline.ask(at, actor)
        elif name == "reply":
            timeline.reply(at)
        elif name == "note":
            timeline.note(at, actor)
        elif name == "extend":
            timeline.extend(at, actor, 1 if days < 50 else 2)
        elif name == "restrict":
            timeline.restrict(at, actor)
    if outcome == "rejected":
        timeline.reject(closed, actor, TEXTS[language][f"reject_{type_}"][0])
        return
    # Objection and restriction close with the portal's own text (stored as its code, read in the reader's language);
    # the other outcomes are the agent's words.
    own = {"objection": "objection", "restriction": "restricted"}
    outcome_text = system_note(own[type_]) if type_ in own else builder.text(language, f"outcome_{type_}")
    timeline.complete(closed, actor, outcome_text)
    if type_ == "restriction":
        lifted = _office(closed + timedelta(days=rng.uniform(10, 45)))
        timeline.lift(min(lifted, builder.now - timedelta(days=1)), actor)


def _open(builder: _Builder, status: str, ages: tuple[int, int], *, extended: bool) -> None:
    rng = builder.rng
    age = rng.uniform(*ages) if ages[0] else rng.uniform(0.05, ages[1])
    type_, channel = _draw_type(builder, allow=lambda t: t != "portability" or rng.random() < 0.3)
    if type_ == "portability":
        channel = "email"  # the portal's downloads complete at once; a queued one came by email
    received = builder.received_at(age, channel)
    customer = builder.customer(received, open_=True)
    timeline = builder.request(
        customer=customer,
        type_=type_,
        channel=channel,
        received_at=received,
        details=builder.details(type_, channel, customer, applied=False),
    )
    now = builder.now
    latest = now - timedelta(minutes=20)
    if status == "received":
        if rng.random() < 0.3:  # triaged, not started
            agent_id: int | None = builder.assignee(type_)
            timeline.assign(_between(rng, received, latest, 0.1, 0.5), f"staff:{builder.staff.dpo}", agent_id)
        return
    roll = rng.random()
    agent_id = builder.staff.agent if roll < 0.65 else builder.staff.dpo if roll < 0.9 else None
    actor = f"staff:{agent_id or builder.staff.agent}"
    plan: list[tuple[str, float]] = []
    if agent_id is not None:
        plan.append(("assign", 0.05))
    plan.append(("start", 0.15))
    if status == "in_progress" and rng.random() < 0.25:
        plan += [("ask", 0.4), ("reply", 0.7)]
    if rng.random() < 0.2:
        plan.append(("note", 0.8))
    if status == "awaiting_customer":
        plan.append(("ask", 0.9))
    moments = [(name, _office_before(received + (latest - received) * fraction, latest)) for name, fraction in plan]
    if extended:
        # Decided before the original deadline, and told to the customer: at most 27 days after receipt.
        at = received + timedelta(days=rng.uniform(8, min(27.0, age - 0.5)))
        moments.append(("extend", _office_before(at, min(latest, timeline.row["due_at"]))))
    moments.sort(key=lambda item: item[1])
    for name, at in moments:
        at = max(at, received + timedelta(minutes=2))
        if name == "assign":
            timeline.assign(at, f"staff:{builder.staff.dpo}" if rng.random() < 0.5 else actor, agent_id)
        elif name == "start":
            timeline.start(at, actor)
        elif name == "ask":
            timeline.ask(at, actor)
        elif name == "reply":
            timeline.reply(at)
        elif name == "note":
            timeline.note(at, actor)
        elif name == "extend":
            timeline.extend(at, actor, 2 if age > 45 else rng.choice((1, 2)))


# --- Time helpers ----------------------------------------------------------------------------------------------------


def _local(day: date, seconds: int) -> datetime:
    return (datetime.combine(day, time(), PARIS) + timedelta(seconds=seconds)).astimezone(UTC)


def _office(moment: datetime) -> datetime:
    """The same day squeezed into office hours (8:00–19:00 in Paris). It keeps the order of moments, so a timeline
    drawn in order stays in order."""
    local = moment.astimezone(PARIS)
    midnight = datetime.combine(local.date(), time(), PARIS)
    seconds = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
    return (midnight + timedelta(seconds=8 * 3600 + seconds * 11 / 24)).astimezone(UTC)


def _office_before(moment: datetime, limit: datetime) -> datetime:
    return min(_office(moment), limit)


def _between(rng: random.Random, start: datetime, end: datetime, low: float, high: float) -> datetime:
    return _office_before(start + (end - start) * rng.uniform(low, high), end)


def _has(row: Row, name: str) -> bool:
    if name == "postal_address":
        return bool(row["address_line1"])
    return row[name] is not None


def _current(row: Row, name: str) -> str:
    if name == "postal_address":
        return f"{row['address_line1']}, {row['postal_code']} {row['city']}"
    if name == "birth_date":
        return row["birth_date"].strftime("%d/%m/%Y")
    return str(row[name])


# --- Writing -------------------------------------------------------------------------------------------------------


def write_requests(connection: Connection, rows: RequestRows) -> None:
    for model, table_rows in ((PrivacyRequest, rows.requests), (RequestEvent, rows.events), (AuditEvent, rows.audits)):
        if table_rows:
            connection.execute(model.__table__.insert(), table_rows)
    if connection.dialect.name == "postgresql":
        # Request ids were given explicitly (events point at them): start the sequence after them.
        connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('privacy_request', 'id'), "
                "COALESCE((SELECT MAX(id) FROM privacy_request), 0) + 1, false)"
            )
        )
