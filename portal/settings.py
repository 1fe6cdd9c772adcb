"""Settings read once from `PORTAL_*` environment variables (12-factor); nothing else reads `os.environ`."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"  # pages and emails (one Jinja2 environment renders both)
STATIC_DIR = PROJECT_ROOT / "static"
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'portal.sqlite3'}"
PLACEHOLDER_SECRET = "insecure-development-key-change-me"  # noqa: S105  (refused outside development)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable, documented in README.md (a test keeps the two in step)."""

    environment: str = "development"  # development | demo | production | test
    secret_key: str = PLACEHOLDER_SECRET
    base_url: str = "http://127.0.0.1:8000"
    database_url: str = DEFAULT_DATABASE_URL
    retailer_file: Path = PROJECT_ROOT / "portal" / "config" / "retailer.toml"
    purposes_file: Path = PROJECT_ROOT / "portal" / "config" / "purposes.toml"
    default_locale: str = "fr"
    timezone: str = "Europe/Paris"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "Privacy portal <no-reply@localhost>"
    run_worker: bool = True  # run the outbox worker inside the web process
    login_ttl: timedelta = timedelta(minutes=10)
    code_attempts: int = 5
    code_failures_per_day: int = 10  # wrong codes per address per day, after which only the link signs in
    customer_idle_timeout: timedelta = timedelta(minutes=15)
    customer_absolute_timeout: timedelta = timedelta(hours=8)
    signin_limit_per_email: int = 5  # sign-in emails per address per window
    signin_limit_per_ip: int = 30  # sign-in requests and code tries per IP per window
    rate_limit_window: timedelta = timedelta(minutes=15)
    demo_smtp_port: int = 8025
    log_level: str = "info"
    # Addresses or networks of the reverse proxies whose X-Forwarded-For is believed (none by default: then the
    # peer's own address counts for rate limits, and no client can choose the address it is limited under).
    trusted_proxies: tuple[str, ...] = ()
    # "dpo": an erasure is proposed by one person and carried out when a DPO other than them approves it.
    erasure_approval: str = ""
    # How long closed requests and their timelines are kept (accountability, Art. 5(2)), then deleted by retention.
    closed_request_retention_months: int = 60
    # The website consent banner (portal/banner/): the retailer's site origins allowed to call its endpoints (CORS),
    # the consent-based purposes it asks about, and its rate limits per window (rate_limit_window).
    banner_origins: tuple[str, ...] = ()
    banner_purposes: tuple[str, ...] = ("browsing_analytics", "personalised_offers")
    banner_limit_per_ip: int = 600
    banner_limit_per_visitor: int = 30
    # How many days before the inactivity rule anonymises a customer they are warned by email; it anonymises only
    # customers warned at least this long ago and inactive since (retention/rules.py).
    inactivity_notice_days: int = 30

    @property
    def https(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def demo(self) -> bool:
        return self.environment == "demo"

    def check(self) -> None:
        """Refuse configurations that would be unsafe in production."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError("PORTAL_BASE_URL must be an absolute http(s) URL, e.g. https://privacy.example.com")
        if self.environment not in ("development", "demo", "production", "test"):
            raise SettingsError("PORTAL_ENVIRONMENT must be one of development, demo, production, test")
        if self.default_locale not in ("fr", "en"):
            raise SettingsError("PORTAL_DEFAULT_LOCALE must be fr or en")
        if self.erasure_approval not in ("", "dpo"):
            raise SettingsError('PORTAL_ERASURE_APPROVAL must be empty (no approval) or "dpo"')
        if self.closed_request_retention_months < 1:
            raise SettingsError("PORTAL_CLOSED_REQUEST_RETENTION_MONTHS must be 1 or more")
        for origin in self.banner_origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or origin != f"{parts.scheme}://{parts.netloc}"
            ):
                raise SettingsError(
                    f"PORTAL_BANNER_ORIGINS: {origin!r} is not an origin: scheme and host only, e.g. https://www.example.fr"
                )
        if not self.banner_purposes:
            raise SettingsError("PORTAL_BANNER_PURPOSES must name at least one consent-based purpose of the register")
        if self.banner_limit_per_ip < 1 or self.banner_limit_per_visitor < 1:
            raise SettingsError("PORTAL_BANNER_LIMIT_PER_IP and PORTAL_BANNER_LIMIT_PER_VISITOR must be 1 or more")
        if self.inactivity_notice_days < 1:
            raise SettingsError("PORTAL_INACTIVITY_NOTICE_DAYS must be 1 or more: the warning must come before")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingsError(
                    f"PORTAL_TRUSTED_PROXIES: {proxy!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None
        if self.environment == "production":
            if self.secret_key == PLACEHOLDER_SECRET or len(self.secret_key) < 32:
                raise SettingsError("PORTAL_SECRET_KEY must be set to at least 32 random characters in production")
            if not self.https:
                raise SettingsError("PORTAL_BASE_URL must use https in production")


def _duration_minutes(value: str) -> timedelta:
    return timedelta(minutes=float(value))


# Environment variable → (field, parser). README.md documents each one; tests/unit/test_settings.py checks that.
ENVIRONMENT_VARIABLES: dict[str, tuple[str, object]] = {
    "PORTAL_ENVIRONMENT": ("environment", str),
    "PORTAL_SECRET_KEY": ("secret_key", str),
    "PORTAL_BASE_URL": ("base_url", lambda v: v.rstrip("/")),
    "PORTAL_DATABASE_URL": ("database_url", str),
    "PORTAL_RETAILER_FILE": ("retailer_file", Path),
    "PORTAL_PURPOSES_FILE": ("purposes_file", Path),
    "PORTAL_DEFAULT_LOCALE": ("default_locale", str),
    "PORTAL_TIMEZONE": ("timezone", str),
    "PORTAL_SMTP_HOST": ("smtp_host", str),
    "PORTAL_SMTP_PORT": ("smtp_port", int),
    "PORTAL_SMTP_USERNAME": ("smtp_username", str),
    "PORTAL_SMTP_PASSWORD": ("smtp_password", str),
    "PORTAL_SMTP_STARTTLS": ("smtp_starttls", lambda v: v.lower() in ("1", "true", "yes")),
    "PORTAL_MAIL_FROM": ("mail_from", str),
    "PORTAL_RUN_WORKER": ("run_worker", lambda v: v.lower() in ("1", "true", "yes")),
    "PORTAL_LOGIN_TTL_MINUTES": ("login_ttl", _duration_minutes),
    "PORTAL_CUSTOMER_IDLE_MINUTES": ("customer_idle_timeout", _duration_minutes),
    "PORTAL_CUSTOMER_ABSOLUTE_MINUTES": ("customer_absolute_timeout", _duration_minutes),
    "PORTAL_DEMO_SMTP_PORT": ("demo_smtp_port", int),
    "PORTAL_LOG_LEVEL": ("log_level", str),
    "PORTAL_ERASURE_APPROVAL": ("erasure_approval", lambda v: v.strip().lower()),
    "PORTAL_CLOSED_REQUEST_RETENTION_MONTHS": ("closed_request_retention_months", int),
    "PORTAL_INACTIVITY_NOTICE_DAYS": ("inactivity_notice_days", int),
    "PORTAL_TRUSTED_PROXIES": ("trusted_proxies", lambda v: tuple(p.strip() for p in v.split(",") if p.strip())),
    "PORTAL_BANNER_ORIGINS": (
        "banner_origins",
        lambda v: tuple(o.strip().rstrip("/") for o in v.split(",") if o.strip()),
    ),
    "PORTAL_BANNER_PURPOSES": ("banner_purposes", lambda v: tuple(p.strip() for p in v.split(",") if p.strip())),
    "PORTAL_BANNER_LIMIT_PER_IP": ("banner_limit_per_ip", int),
    "PORTAL_BANNER_LIMIT_PER_VISITOR": ("banner_limit_per_visitor", int),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (used by the CLI and tests)."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (field, parse) in ENVIRONMENT_VARIABLES.items():
        if name in environ and environ[name] != "":
            try:
                values[field] = parse(environ[name])  # type: ignore[operator]  # each variable has its own parser's type
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]  # each value was checked by its variable's parser
    settings.check()
    return settings
