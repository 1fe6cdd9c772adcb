"""The retailer file is validated at start-up with messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.i18n import using_locale
from portal.retailer import RetailerConfigError, load_retailer
from portal.settings import Settings

SHIPPED = Settings().retailer_file


def test_the_shipped_file_is_valid() -> None:
    retailer = load_retailer(SHIPPED)
    assert retailer.name == "Maison Aubépine" and retailer.dpo_email


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('primary = "#2f5d50"', 'primary = "#ffcc00"'), "contrast"),
        (('primary = "#2f5d50"', 'primary = "red; }"'), "hex colour"),
        (('email = "dpo@maison-aubepine.example"', 'email = "nobody"'), "email"),
        (('logo = "img/logo.svg"', 'logo = "https://cdn.example/logo.svg"'), "static"),
        (('name = "Maison Aubépine"', 'name = ""'), "name"),
        (("[dpo]", "[dpo"), "TOML"),
        (('name.en = "Data Protection Officer"', ""), r"\[dpo\] name must give the text in every language"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, change, message) -> None:
    path = tmp_path / "retailer.toml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace(*change, 1), encoding="utf-8")
    with pytest.raises(RetailerConfigError, match=message):
        load_retailer(path)


def test_the_dpo_s_title_speaks_the_reader_s_language() -> None:
    retailer = load_retailer(SHIPPED)
    with using_locale("en"):
        assert retailer.dpo_name == "Data Protection Officer"
    with using_locale("fr"):
        assert retailer.dpo_name == "Délégué à la protection des données"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RetailerConfigError, match="not found"):
        load_retailer(tmp_path / "nope.toml")
