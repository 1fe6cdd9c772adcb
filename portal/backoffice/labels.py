"""Names of request values as staff read them (the customer's pages word them for the customer)."""

from __future__ import annotations

from functools import cache

from portal.i18n import get_locale, gettext, lazy_gettext, using_locale

TYPES = {
    "access": lazy_gettext("Access"),
    "rectification": lazy_gettext("Rectification"),
    "erasure": lazy_gettext("Erasure"),
    "portability": lazy_gettext("Portability"),
    "objection": lazy_gettext("Objection"),
    "restriction": lazy_gettext("Restriction"),
    "other": lazy_gettext("Question"),
}
STATUSES = {
    "open": lazy_gettext("Open (all)"),
    "received": lazy_gettext("Received"),
    "in_progress": lazy_gettext("In progress"),
    "awaiting_customer": lazy_gettext("Waiting for the customer"),
    "completed": lazy_gettext("Completed"),
    "rejected": lazy_gettext("Refused"),
    "cancelled": lazy_gettext("Cancelled"),
    "closed": lazy_gettext("Closed (all)"),
    "all": lazy_gettext("Any status"),
}
CHANNELS = {
    "web": lazy_gettext("Website"),
    "store": lazy_gettext("Store"),
    "support": lazy_gettext("Customer service"),
    "email": lazy_gettext("Email"),
    "phone": lazy_gettext("Phone"),
    "post": lazy_gettext("Post"),
}
TIMELINE = {
    "received": lazy_gettext("Received"),
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
}
PLAN_ACTIONS = {
    "deleted": lazy_gettext("Deleted"),
    "anonymised": lazy_gettext("Anonymised"),
    "withdrawn": lazy_gettext("Withdrawn"),
    "kept": lazy_gettext("Kept"),
}


def _translated(table: dict[str, str]) -> dict[str, str]:
    return {key: gettext(value) for key, value in table.items()}


def staff_labels() -> dict[str, dict[str, str]]:
    """Every table above in the current language, for a template (`labels.types[row.type]`)."""
    return _labels_in(get_locale())


@cache
def _labels_in(locale: str) -> dict[str, dict[str, str]]:
    with using_locale(locale):
        return {
            "types": _translated(TYPES),
            "statuses": _translated(STATUSES),
            "channels": _translated(CHANNELS),
            "timeline": _translated(TIMELINE),
            "plan_actions": _translated(PLAN_ACTIONS),
        }
