"""Names of domain values as people read them, translated at display time (pages, emails, the archive, back office).

Each vocabulary is written once, here: a table of `lazy_gettext` names (extracted for translation, translated only
when shown, in the reader's language) and a small lookup that falls back to the raw code for a value it does not
know. Templates reach the lookups through `TEMPLATE_GLOBALS`; back-office templates get the staff tables whole from
`staff_labels()`.

Where a customer and a member of staff read the same value, the wording differs on purpose: the customer reads about
their own data ("access to my data", "waiting for your answer"), staff read a short, neutral name for a queue or a
report ("Access", "Waiting for the customer"). Those vocabularies have two tables, the staff one prefixed `STAFF_`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from portal.i18n import (
    SUPPORTED_LOCALES,
    get_locale,
    gettext,
    lazy_gettext,
    lazy_pgettext,
    ngettext,
    translations,
    using_locale,
)

# --- What the customer reads -------------------------------------------------------------------------------------

PROFILE_FIELDS = {
    "first_name": lazy_gettext("first name"),
    "last_name": lazy_gettext("last name"),
    "email": lazy_gettext("email address"),
    "phone": lazy_gettext("phone number"),
    "postal_address": lazy_gettext("postal address"),
    "address_line1": lazy_gettext("street address"),
    "address_line2": lazy_gettext("address, second line"),
    "postal_code": lazy_gettext("postcode"),
    "city": lazy_gettext("town or city"),
    "country": lazy_gettext("country"),
    "birth_date": lazy_gettext("date of birth"),
    "loyalty_number": lazy_gettext("loyalty card number"),
    "preferred_language": lazy_gettext("preferred language"),
}
REQUEST_TYPES = {
    "access": lazy_gettext("access to my data"),
    "rectification": lazy_gettext("correction of my data"),
    "erasure": lazy_gettext("erasure of my data"),
    "portability": lazy_gettext("copy of my data (portability)"),
    "objection": lazy_gettext("objection"),
    "restriction": lazy_gettext("restriction of use"),
    "other": lazy_gettext("question"),
}
REQUEST_STATUSES = {
    "received": lazy_gettext("received"),
    "in_progress": lazy_gettext("in progress"),
    "awaiting_customer": lazy_gettext("waiting for your answer"),
    "completed": lazy_gettext("completed"),
    "rejected": lazy_gettext("refused"),
    "cancelled": lazy_gettext("cancelled"),
}
TIMELINE_STEPS = {
    "received": lazy_gettext("Request received"),
    "status_changed": lazy_gettext("Status changed"),
    "message": lazy_gettext("Message"),
    "started": lazy_gettext("Our team started working on it"),
    "question": lazy_gettext("Question for you"),
    "reply": lazy_gettext("Your answer"),
    "assigned": lazy_gettext("Assigned"),
    "note": lazy_gettext("Internal note"),
    "extended": lazy_gettext("Deadline extended"),
    "restricted": lazy_gettext("Use of your data restricted"),
    "restriction_lifted": lazy_gettext("Restriction lifted"),
    "completed": lazy_gettext("Request completed"),
    "rejected": lazy_gettext("Request refused"),
    "cancelled": lazy_gettext("Request cancelled"),
}
# Where a consent was given or withdrawn (consent/ledger.py CHANNELS).
CONSENT_CHANNELS = {
    "web": lazy_gettext("on this website"),
    "store": lazy_gettext("in a store"),
    "support": lazy_gettext("through our customer service"),
    "import": lazy_gettext("imported from our customer records"),
    "api": lazy_gettext("through our systems (API)"),
    "website": lazy_gettext("on our website, through its consent banner"),
}
# The kind of identity document store staff looked at (store/service.py DOCUMENT_KINDS); never its number.
IDENTITY_DOCUMENTS = {
    "identity_card": lazy_gettext("Identity card"),
    "passport": lazy_gettext("Passport"),
    "driving_licence": lazy_gettext("Driving licence"),
    "residence_permit": lazy_gettext("Residence permit"),
}
# How a purchase was made (purchases/service.py CHANNELS): the purchases pages, the receipt and the archive.
PURCHASE_CHANNELS = {
    "in_store": lazy_gettext("In store"),
    "web": lazy_gettext("Online, delivered"),
    "click_and_collect": lazy_gettext("Online, collected in store"),
}
# The purpose register's legal bases (consent/register.py LEGAL_BASES): /me/processing, /privacy and the archive.
LEGAL_BASES = {
    "consent": lazy_gettext("Your consent (GDPR article 6(1)(a))"),
    "contract": lazy_gettext("Performing our contract with you (GDPR article 6(1)(b))"),
    "legal_obligation": lazy_gettext("A legal obligation we must meet (GDPR article 6(1)(c))"),
    "legitimate_interest": lazy_gettext("Our legitimate interest (GDPR article 6(1)(f))"),
}
LANGUAGES = {"fr": lazy_gettext("French"), "en": lazy_gettext("English")}

# --- What staff read (the back office) -----------------------------------------------------------------------------

STAFF_ROLES = {
    "agent": lazy_gettext("Support agent"),
    "store": lazy_gettext("Store staff"),
    "dpo": lazy_gettext("Data protection officer"),
}
STAFF_REQUEST_TYPES = {
    "access": lazy_gettext("Access"),
    "rectification": lazy_gettext("Rectification"),
    "erasure": lazy_gettext("Erasure"),
    "portability": lazy_gettext("Portability"),
    "objection": lazy_gettext("Objection"),
    "restriction": lazy_gettext("Restriction"),
    "other": lazy_gettext("Question"),
}
# The statuses, plus the queue filter's groups of them (backoffice/queue.py STATUS_CHOICES).
STAFF_REQUEST_STATUSES = {
    "open": lazy_gettext("Open (all)"),
    "received": lazy_pgettext("request status", "Received"),
    "in_progress": lazy_gettext("In progress"),
    "awaiting_customer": lazy_gettext("Waiting for the customer"),
    "completed": lazy_gettext("Completed"),
    "rejected": lazy_gettext("Refused"),
    "cancelled": lazy_gettext("Cancelled"),
    "closed": lazy_gettext("Closed (all)"),
    "all": lazy_gettext("Any status"),
}
# How a request reached us (backoffice/queue.py CHANNELS); only the back office names it.
REQUEST_CHANNELS = {
    "web": lazy_gettext("Website"),
    "store": lazy_gettext("Store"),
    "support": lazy_gettext("Customer service"),
    "email": lazy_gettext("Email"),
    "phone": lazy_gettext("Phone"),
    "post": lazy_gettext("Post"),
}
STAFF_TIMELINE_STEPS = {
    "received": lazy_pgettext("request status", "Received"),
    "started": lazy_gettext("Started"),
    "assigned": lazy_gettext("Assigned"),
    "question": lazy_gettext("Question to the customer"),
    "reply": lazy_gettext("Answer from the customer"),
    "message": lazy_gettext("Message to the customer"),
    "note": lazy_gettext("Internal note"),
    "extended": lazy_gettext("Deadline extended"),
    "completed": lazy_gettext("Completed"),
    "rejected": lazy_gettext("Refused"),
    "cancelled": lazy_gettext("Cancelled by the customer"),
    "restricted": lazy_gettext("Restriction applied"),
    "restriction_lifted": lazy_gettext("Restriction lifted"),
    "erasure_proposed": lazy_gettext("Erasure proposed, waiting for a DPO's approval"),
    "erasure_declined": lazy_gettext("Proposed erasure declined"),
}
# What an erasure does to each kind of data (erasure/service.py), in the plan an agent previews.
ERASURE_PLAN_ACTIONS = {
    "deleted": lazy_gettext("Deleted"),
    "anonymised": lazy_gettext("Anonymised"),
    "withdrawn": lazy_gettext("Withdrawn"),
    "closed": lazy_pgettext("erasure plan", "Closed"),
    "kept": lazy_gettext("Kept"),
}


# What each audit event records, for the DPO's audit trail (its code stays shown beside it: it is the proof's term).
AUDIT_ACTIONS = {
    "apikey.created": lazy_gettext("API key created"),
    "apikey.revoked": lazy_gettext("API key revoked"),
    "audit.exported": lazy_gettext("Audit trail exported"),
    "banner.answered": lazy_gettext("Website consent banner answered by a visitor"),
    "browsing.deleted": lazy_gettext("Browsing history deleted"),
    "browsing.ingested": lazy_gettext("Browsing events received"),
    "consent.granted": lazy_gettext("Consent given"),
    "consent.history_recorded": lazy_gettext("Earlier consent answers imported"),
    "consent.visitor_linked": lazy_gettext("Website visitor's consent answers joined to the customer"),
    "consent.withdrawn": lazy_gettext("Consent withdrawn"),
    "consent_proof.exported": lazy_gettext("Consent proof exported"),
    "customer.erased": lazy_gettext("Customer's data erased"),
    "customer.imported": lazy_gettext("Customer records imported"),
    "customer.inactivity_warned": lazy_gettext("Customer warned before anonymisation for inactivity"),
    "customer.merged": lazy_gettext("Two records of one customer merged"),
    "erasure.proposed": lazy_gettext("Erasure proposed for approval"),
    "erasure.declined": lazy_gettext("Proposed erasure declined"),
    "customer.rectified": lazy_gettext("Customer's data corrected"),
    "customer.restricted": lazy_gettext("Processing restricted"),
    "customer.restriction_lifted": lazy_gettext("Restriction lifted"),
    "customer.viewed": lazy_gettext("Customer's data viewed"),
    "email_change.requested": lazy_gettext("Change of email address asked for"),
    "email_change.taken": lazy_gettext("Email change asked for an address already in use: its owner was told"),
    "import.batch_written": lazy_gettext("Imported rows written"),
    "incident.cnil_notified": lazy_gettext("Breach notified to the CNIL"),
    "incident.exported": lazy_gettext("Breach record exported for the CNIL"),
    "incident.notice_saved": lazy_gettext("Breach notice written"),
    "incident.notices_sent": lazy_gettext("Breach notices sent to customers"),
    "incident.recipients_selected": lazy_gettext("Customers concerned by a breach selected"),
    "incident.recorded": lazy_gettext("Personal data breach recorded"),
    "objection.honoured": lazy_gettext("Objection honoured"),
    "portability.archive_delivered": lazy_gettext("Data archive downloaded"),
    "portability.download_interrupted": lazy_gettext("Archive download interrupted"),
    "portability.download_abandoned": lazy_gettext("Archive download never finished: request closed"),
    "portability.link_sent": lazy_gettext("Download link sent"),
    "portability.link_used": lazy_gettext("Download link used"),
    "purchases.imported": lazy_gettext("Purchases imported"),
    "request.assigned": lazy_gettext("Request assigned"),
    "request.cancelled": lazy_gettext("Request cancelled"),
    "request.completed": lazy_gettext("Request completed"),
    "request.customer_replied": lazy_gettext("Customer answered"),
    "request.extended": lazy_gettext("Deadline extended"),
    "request.message_sent": lazy_gettext("Message sent to the customer"),
    "request.note_added": lazy_gettext("Internal note added"),
    "request.question_asked": lazy_gettext("Question put to the customer"),
    "request.received": lazy_gettext("Request received"),
    "request.rejected": lazy_gettext("Request refused"),
    "request.started": lazy_gettext("Work on the request started"),
    "retention.run": lazy_gettext("Retention periods applied"),
    "signin.code_failed": lazy_gettext("Wrong sign-in code"),
    "signin.requested": lazy_gettext("Sign-in link asked for"),
    "signin.throttled": lazy_gettext("Sign-in email not sent: too many asked for this address"),
    "signin.succeeded": lazy_gettext("Customer signed in"),
    "signout": lazy_gettext("Customer signed out"),
    "staff.created": lazy_gettext("Staff account created"),
    "staff.disabled": lazy_gettext("Staff account disabled"),
    "staff.enabled": lazy_gettext("Staff account enabled"),
    "staff.locked": lazy_gettext("Staff account locked"),
    "staff.password_changed": lazy_gettext("Staff password changed"),
    "staff.sign_in_failed": lazy_gettext("Staff sign-in failed"),
    "staff.signed_in": lazy_gettext("Staff member signed in"),
    "staff.signed_out": lazy_gettext("Staff member signed out"),
    "staff.totp_enrolled": lazy_gettext("Authenticator app set up"),
    "staff.totp_reset": lazy_gettext("Authenticator app reset"),
    "store.created": lazy_gettext("Store created"),
    "tablet.archive_emailed": lazy_gettext("Tablet: archive link emailed to the customer"),
    "tablet.request_on_behalf": lazy_gettext("Tablet: request filed for the customer, identity checked in store"),
    "tablet.session_finished": lazy_gettext("Tablet: assisted session finished"),
    "tablet.session_opened": lazy_gettext("Tablet: assisted session opened"),
    "store.updated": lazy_gettext("Store updated"),
    "webhook_endpoint.added": lazy_gettext("Webhook endpoint added"),
    "webhook_endpoint.disabled": lazy_gettext("Webhook endpoint disabled"),
    "webhook_endpoint.enabled": lazy_gettext("Webhook endpoint enabled"),
    "webhook_endpoint.secret_rotated": lazy_gettext("Webhook signing secret replaced"),
}
# --- What the portal itself writes on a customer's request -------------------------------------------------------
# A closing outcome or a notice on the timeline that the portal writes (not a person) is stored as "system:<code>"
# and rendered in the reader's language when shown, emailed or archived; any other note was written by a person and
# is shown as written. (Rows from before the codes hold the sentence itself: `note_code` recognises them.)
SYSTEM_NOTE_PREFIX = "system:"
SYSTEM_NOTES = {
    "erased": lazy_gettext(
        "Your personal data was erased. Your purchases are kept for accounting, anonymised: they are no longer "
        "linked to you."
    ),
    "restricted": lazy_gettext(
        "The use of your data is restricted: we keep it but no longer use it, in particular for marketing, until "
        "we tell you otherwise."
    ),
    "objection": lazy_gettext(
        "Your objection is recorded: every consent you had given us is withdrawn, and we no longer use your data "
        "for marketing."
    ),
    "downloaded": lazy_gettext("You downloaded the archive of all your data."),
    "download_link_sent": lazy_gettext("We emailed you a link to download your data. It works for 7 days."),
    "closed_by_erasure": lazy_gettext(
        "Closed with the erasure of your personal data: there is no data about you left to act on."
    ),
    "note_removed_at_erasure": lazy_gettext("Note removed when the customer's data was erased."),
}


def system_note(code: str) -> str:
    """What to store for the portal's own text `code` (raises KeyError for an unknown code)."""
    SYSTEM_NOTES[code]  # noqa: B018  (a typo in a code must fail where it is written, not show up as text)
    return SYSTEM_NOTE_PREFIX + code


@cache
def _codes_of_sentences() -> dict[str, str]:
    return {
        translations(locale).gettext(message): code
        for code, message in SYSTEM_NOTES.items()
        for locale in SUPPORTED_LOCALES
    }


def note_code(note: str | None) -> str | None:
    """The code of a text the portal wrote, or None when a person wrote `note` (or there is none)."""
    if not note:
        return None
    if note.startswith(SYSTEM_NOTE_PREFIX) and note[len(SYSTEM_NOTE_PREFIX) :] in SYSTEM_NOTES:
        return note[len(SYSTEM_NOTE_PREFIX) :]
    return _codes_of_sentences().get(note)


def note_text(note: str | None, locale: str | None = None) -> str:
    """A stored note or outcome as the reader reads it: the portal's texts in their language (`locale`, else the
    current one), a person's as written."""
    code = note_code(note)
    if not code:
        return note or ""
    return translations(locale).gettext(str(SYSTEM_NOTES[code])) if locale else gettext(SYSTEM_NOTES[code])


# Actors that are not a person's account.
AUDIT_ACTORS = {"system": lazy_gettext("The portal"), "cli": lazy_gettext("Command line")}


def _label(table: dict[str, str], value: str) -> str:
    return gettext(table[value]) if value in table else value


def field_label(field: str) -> str:
    return _label(PROFILE_FIELDS, field)


# What the profile shows for a field it holds no value for: French agrees it with the field (« non renseignée »
# for a date), so a date has a message of its own.
NOT_HELD = lazy_gettext("not held")
NOT_HELD_BY_FIELD = {"birth_date": lazy_pgettext("a date", "not held")}


def not_held_label(field: str) -> str:
    return gettext(NOT_HELD_BY_FIELD.get(field, NOT_HELD))


def request_type_label(value: str) -> str:
    return _label(REQUEST_TYPES, value)


def request_status_label(value: str) -> str:
    return _label(REQUEST_STATUSES, value)


def timeline_step_label(value: str) -> str:
    return _label(TIMELINE_STEPS, value)


def consent_channel_label(value: str) -> str:
    return _label(CONSENT_CHANNELS, value)


def change_channel_label(value: str) -> str:
    """How a change of the profile reached us: the same channels, and words, as a consent's."""
    return _label(CONSENT_CHANNELS, value)


def identity_document_label(value: str) -> str:
    return _label(IDENTITY_DOCUMENTS, value)


def purchase_channel_label(value: str) -> str:
    return _label(PURCHASE_CHANNELS, value)


def legal_basis_label(value: str) -> str:
    return _label(LEGAL_BASES, value)


def language_label(value: str) -> str:
    return _label(LANGUAGES, value)


def staff_role_label(value: str) -> str:
    return _label(STAFF_ROLES, value)


def audit_action_label(action: str) -> str:
    return _label(AUDIT_ACTIONS, action)


def audit_actor_label(actor: str, names: Mapping[str, str] | None = None) -> str:
    """Who acted, in words: a staff member's name, "customer 34", the portal itself; the reference otherwise."""
    if names and actor in names:
        return names[actor]
    if actor in AUDIT_ACTORS:
        return gettext(AUDIT_ACTORS[actor])
    kind, _, number = actor.partition(":")
    if kind == "customer" and number.isdigit():
        return gettext("Customer %(number)s", number=number)
    return actor


def staff_labels() -> dict[str, dict[str, str]]:
    """The back office's tables in the current language, for a template (`labels.types[row.type]`)."""
    return _staff_labels_in(get_locale())


@cache
def _staff_labels_in(locale: str) -> dict[str, dict[str, str]]:
    # Translated once per language: a queue page looks up several labels per row.
    with using_locale(locale):
        return {
            "types": _translated(STAFF_REQUEST_TYPES),
            "statuses": _translated(STAFF_REQUEST_STATUSES),
            "channels": _translated(REQUEST_CHANNELS),
            "timeline": _translated(STAFF_TIMELINE_STEPS),
            "plan_actions": _translated(ERASURE_PLAN_ACTIONS),
        }


def _translated(table: dict[str, str]) -> dict[str, str]:
    return {key: gettext(value) for key, value in table.items()}


def period_words(amount: int, unit: str) -> str:
    """A retention period in words, in the current language: (13, "months") → "13 mois"."""
    words = {
        "days": ngettext("%(num)s day", "%(num)s days", amount),
        "months": ngettext("%(num)s month", "%(num)s months", amount),
        "years": ngettext("%(num)s year", "%(num)s years", amount),
    }
    return words[unit]


TEMPLATE_GLOBALS = {
    "audit_action_label": audit_action_label,
    "audit_actor_label": audit_actor_label,
    "field_label": field_label,
    "request_type_label": request_type_label,
    "request_status_label": request_status_label,
    "timeline_step_label": timeline_step_label,
    "language_label": language_label,
    "consent_channel_label": consent_channel_label,
    "change_channel_label": change_channel_label,
    "purchase_channel_label": purchase_channel_label,
    "identity_document_label": identity_document_label,
    "legal_basis_label": legal_basis_label,
    "staff_role_label": staff_role_label,
}
