from __future__ import annotations

import pytest

from portal.mail.compose import EmailComposer
from portal.retailer import load_retailer
from portal.settings import Settings
from portal.web.templating import make_environment
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str) -> Settings:  # unit tests send nothing: no SMTP server needed
    return make_settings(database_url, smtp_port=1)


@pytest.fixture
def composer(settings: Settings) -> EmailComposer:
    return EmailComposer(make_environment(settings=settings, retailer=load_retailer(settings.retailer_file)))
