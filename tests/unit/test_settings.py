"""Settings: every variable documented, bad values refused with a clear message."""

from __future__ import annotations

import pytest

from portal.settings import ENVIRONMENT_VARIABLES, PROJECT_ROOT, SettingsError, load_settings


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_environment_is_read() -> None:
    settings = load_settings(
        {"PORTAL_BASE_URL": "https://privacy.example.com/", "PORTAL_SMTP_PORT": "2525", "PORTAL_LOGIN_TTL_MINUTES": "5"}
    )
    assert settings.base_url == "https://privacy.example.com" and settings.https
    assert settings.smtp_port == 2525 and settings.login_ttl.total_seconds() == 300


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORTAL_SMTP_PORT": "twenty"}, "PORTAL_SMTP_PORT"),
        ({"PORTAL_BASE_URL": "privacy.example.com"}, "PORTAL_BASE_URL"),
        ({"PORTAL_DEFAULT_LOCALE": "de"}, "PORTAL_DEFAULT_LOCALE"),
        ({"PORTAL_ENVIRONMENT": "production", "PORTAL_BASE_URL": "https://p.example.com"}, "PORTAL_SECRET_KEY"),
        ({"PORTAL_ENVIRONMENT": "production", "PORTAL_SECRET_KEY": "x" * 40}, "https"),
    ],
)
def test_unsafe_or_malformed_settings_are_refused(environ, message) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)
