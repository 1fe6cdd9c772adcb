"""SQLModel tables, one module per aggregate. Importing this package registers every table on the metadata."""

from portal.models.api import API_SCOPES, WEBHOOK_TOPICS, ApiKey, WebhookEndpoint
from portal.models.audit import AuditEvent
from portal.models.browsing import PageView, PageViewDay, PageViewTotal
from portal.models.commerce import Purchase, PurchaseLine, PurchaseTotal, Store
from portal.models.consent import BannerTally, ConsentEvent, ConsentWording, WebsiteVisitor
from portal.models.customer import Customer, email_key
from portal.models.identity import LoginChallenge, RateLimit, Session
from portal.models.incidents import Incident, IncidentRecipient
from portal.models.outbox import OutboxMessage
from portal.models.profile import EmailChange, ProfileChange
from portal.models.requests import PrivacyRequest, RequestEvent
from portal.models.staff import STAFF_ROLES, StaffUser
from portal.models.types import UTCDateTime, utcnow

__all__ = [
    "API_SCOPES",
    "STAFF_ROLES",
    "WEBHOOK_TOPICS",
    "ApiKey",
    "StaffUser",
    "WebhookEndpoint",
    "AuditEvent",
    "BannerTally",
    "ConsentEvent",
    "ConsentWording",
    "EmailChange",
    "Incident",
    "IncidentRecipient",
    "Customer",
    "LoginChallenge",
    "OutboxMessage",
    "PageView",
    "PageViewDay",
    "PageViewTotal",
    "PrivacyRequest",
    "ProfileChange",
    "Purchase",
    "PurchaseLine",
    "PurchaseTotal",
    "RateLimit",
    "RequestEvent",
    "Session",
    "Store",
    "UTCDateTime",
    "WebsiteVisitor",
    "email_key",
    "utcnow",
]
