"""Download my data in a real Chromium: from the overview to the download page, the ZIP saved by the browser, then
index.html opened from the extracted archive (file://, offline) with the heavy customer's totals.

Camille has 1,241 purchases of €42.88 each (3 in each of three shops, the rest on the web shop) and 3,410 page
views (tests/browser/conftest.py), so the totals can be worked out here.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CAMILLE, Inbox, Sessions
from tests.browser.test_sign_in_browser import normalised, sign_in_by_code

pytestmark = pytest.mark.browser


def test_camille_downloads_her_archive_and_reads_it_offline(
    sessions: Sessions, inbox: Inbox, tmp_path: Path, artifacts: Path
) -> None:
    session = sessions.open(locale="fr-FR")
    page = session.page
    sign_in_by_code(session, inbox, CAMILLE)

    page.locator('a[href="/me/download"]').first.click()
    page.wait_for_url(session.url("/me/download"))
    with page.expect_download() as waiting:
        page.get_by_test_id("download-button").click()
    download = waiting.value
    assert download.suggested_filename.startswith("mes-donnees-") and download.suggested_filename.endswith(".zip")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    session.errors.assert_none()

    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        archive.extractall(tmp_path / "archive")
        manifest = json.loads(archive.read("manifest.json"))
    rows = {entry["path"]: entry["rows"] for entry in manifest["files"]}
    assert rows["data/purchases.csv"] == 1241 and rows["data/purchase_lines.csv"] == 2 * 1241
    assert rows["data/browsing.json"] == 3410

    # The report, opened from disk by a browser with no network at all.
    offline = sessions.open(locale="fr-FR", offline=True)
    report = offline.page
    loaded: list[str] = []
    report.on("request", lambda request: loaded.append(request.url))
    index = tmp_path / "archive" / "index.html"
    report.goto(index.as_uri())
    assert report.locator("html").get_attribute("lang") == "fr"
    assert normalised(report.get_by_test_id("total-count").inner_text()) == "1 241"
    assert normalised(report.get_by_test_id("total-amount").inner_text()) == "53 214,08 €"
    by_store = report.get_by_test_id("totals-by-store").locator("tbody tr")
    expect(by_store).to_have_count(4)
    amounts = [normalised(by_store.nth(i).locator("td").nth(1).inner_text()) for i in range(4)]
    assert amounts == ["128,64 €", "128,64 €", "128,64 €", "52 828,16 €"]  # three shops, then the web shop
    assert "3 410" in normalised(report.get_by_test_id("browsing-total").inner_text())
    expect(report.get_by_test_id("purchase-list").locator("tbody tr")).to_have_count(1000)
    report.screenshot(path=str(artifacts / "download-index-fr.png"), full_page=False)
    # Nothing but the file itself was loaded: no stylesheet, script, font or image from anywhere.
    assert [url for url in loaded if not url.startswith("file://")] == []
    assert loaded == [index.as_uri()]
    offline.errors.assert_none()

    # The download is a completed request on her requests page.
    page.goto(session.url("/me/requests"))
    expect(page.locator(f'a[href="/me/requests/{manifest["request_reference"]}"]')).to_be_visible()
