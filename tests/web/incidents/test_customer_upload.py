"""The DPO uploads the list of customers a breach concerns as a file (multipart, no JavaScript): bad lines reported
with their numbers, bad files refused with a 4xx in the DPO's language, nothing selected from a refused file."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from portal.db import transaction
from portal.incidents import service
from portal.incidents.customer_list import UPLOAD_BYTES
from portal.incidents.forms import IncidentFacts
from portal.models import AuditEvent, IncidentRecipient
from tests.conftest import Clock, csrf_from
from tests.factories import make_customer
from tests.staff_helpers import make_staff, sign_in_staff


@pytest.fixture
def incident(client: TestClient, engine: Engine, clock: Clock) -> str:
    """An incident, and the DPO signed in on its page in English."""
    staff, password, secret = make_staff(engine, role="dpo")
    sign_in_staff(client, staff.email, password, secret, clock)
    client.get("/lang/en")
    facts = IncidentFacts(discovered_at=clock(), nature="Leak", data_categories=("email_address",), people_estimate=3,
                          consequences="Phishing", measures="Keys rotated")  # fmt: skip
    with transaction(engine) as session:
        return service.record_incident(session, facts=facts, actor="staff:1", now=clock())


def upload(client: TestClient, reference: str, content: bytes, *, column: str = "", name: str = "list.csv"):  # type: ignore[no-untyped-def]
    page = client.get(f"/staff/incidents/{reference}")
    return client.post(
        f"/staff/incidents/{reference}/select-file",
        data={"csrf_token": csrf_from(page.text), "column": column},
        files={"customers_file": (name, content, "text/csv")},
    )


def selected(engine: Engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(IncidentRecipient)) or 0


def test_the_page_offers_a_file_upload_that_works_without_javascript(client: TestClient, incident: str) -> None:
    page = client.get(f"/staff/incidents/{incident}").text
    form = page[page.index('action="/staff/incidents/' + incident + '/select-file"') :]
    form = form[: form.index("</form>")]
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in form and 'name="customers_file"' in form
    assert form.index('name="csrf_token"') < form.index('name="customers_file"')  # the token comes first


def test_a_csv_with_a_bom_selects_its_customers_and_lists_bad_lines_with_numbers(
    client: TestClient, engine: Engine, clock: Clock, incident: str
) -> None:
    make_customer(engine, email="Ines.Martin@example.org")
    make_customer(engine, email="leo@example.org", retailer_ref="C-1002")
    make_customer(engine, email="gone@example.org", erased_at=clock())
    content = (
        "\ufeffNom;Courriel;Ville\r\n"
        "Martin;ines.martin@example.org;Lyon\r\n"
        "Inconnu;nobody@example.org;Paris\r\n"
        "\r\n"
        "Effacé;gone@example.org;Nantes\r\n"
        "Martin;INES.MARTIN@example.org;Lyon\r\n"
    ).encode()
    answer = upload(client, incident, content)
    assert answer.status_code == 200, answer.text
    assert "1 customers found, 1 newly selected" in answer.text
    assert "line 3, « nobody@example.org »: No customer with this address or id" in answer.text
    assert "line 5, « gone@example.org »: This customer&#39;s data was erased" in answer.text
    assert "line 1" not in answer.text and "line 2," not in answer.text  # the heading and a good line
    # Plain text with retailer ids, one per line; the same customer again adds nobody.
    again = upload(client, incident, b"C-1002\nines.martin@example.org\nC-9999\n", name="ids.txt")
    assert "2 customers found, 1 newly selected" in again.text and "line 3, « C-9999 »" in again.text
    assert selected(engine) == 2
    with transaction(engine) as session:
        methods = session.scalars(select(IncidentRecipient.selected_by)).all()
        audits = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "incident.recipients_selected"))
        assert set(methods) == {"file"} and [a["bad_lines"] for a in audits] == [2, 1]


def test_a_file_with_several_columns_needs_its_column_named(client: TestClient, engine: Engine, incident: str) -> None:
    make_customer(engine, email="leo@example.org")
    content = b"name,address\nLeo,leo@example.org\n"
    refused = upload(client, incident, content)
    assert refused.status_code == 400 and "several columns" in refused.text and selected(engine) == 0
    assert "1 customers found" in upload(client, incident, content, column="address").text
    assert upload(client, incident, content, column="7").status_code == 400


@pytest.mark.parametrize(
    ("content", "status", "english", "french"),
    [
        ("ines@example.org\nc\xe9cile@example.org\n".encode("latin-1"), 400, "not in UTF-8 (line 2)",
         "n'est pas en UTF-8 (ligne 2)"),
        ("ines@example.org\n".encode("utf-16"), 400, "not in UTF-8 (line 1)", "n'est pas en UTF-8 (ligne 1)"),
        ("ines@example.org\n".encode("utf-16-le"), 400, "not a text or CSV file", "n'est pas un fichier texte"),
        (b"ines@example.org\n\x00\x01\x02", 400, "not a text or CSV file in UTF-8 (line 2)", "(ligne 2)"),
        (b"", 400, "The file is empty", "Le fichier est vide"),
        (b"\xef\xbb\xbf\r\n\r\n", 400, "The file is empty", "Le fichier est vide"),
        (b"x" * (UPLOAD_BYTES + 1), 413, "larger than 5 MB", "plus de 5 Mo"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_in_the_dpos_language_and_select_nobody(
    client: TestClient, engine: Engine, incident: str, content: bytes, status: int, english: str, french: str
) -> None:
    make_customer(engine, email="ines@example.org")
    answer = upload(client, incident, content)
    assert answer.status_code == status and english in answer.text
    client.get("/lang/fr")
    answer = upload(client, incident, content)
    assert answer.status_code == status and french in answer.text.replace("&#39;", "'")
    assert selected(engine) == 0


def test_a_body_announced_too_large_is_refused_before_it_is_read(client: TestClient, incident: str) -> None:
    page = client.get(f"/staff/incidents/{incident}")
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf_from(page.text)}\r\n'
            f"--{boundary}--\r\n").encode()  # fmt: skip
    answer = client.post(
        f"/staff/incidents/{incident}/select-file",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(UPLOAD_BYTES * 2)},
    )
    assert answer.status_code == 413


def test_no_file_and_a_form_without_a_file_are_400(client: TestClient, incident: str) -> None:
    page = client.get(f"/staff/incidents/{incident}")
    answer = client.post(f"/staff/incidents/{incident}/select-file", data={"csrf_token": csrf_from(page.text)})
    assert answer.status_code == 400 and "Choose the file" in answer.text
    empty_name = upload(client, incident, b"a@example.org", name="")
    assert empty_name.status_code in (400, 422)


def test_the_upload_needs_its_token_first_and_a_dpo(
    client: TestClient, engine: Engine, clock: Clock, incident: str
) -> None:
    page = client.get(f"/staff/incidents/{incident}")
    files = {"customers_file": ("list.txt", b"ines@example.org\n", "text/plain")}
    assert client.post(f"/staff/incidents/{incident}/select-file", files=files).status_code == 403
    # The token after the file is not read: the CSRF check stops at the first field.
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="customers_file"; filename="l.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\nines@example.org\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf_from(page.text)}\r\n'
            f"--{boundary}--\r\n").encode()  # fmt: skip
    late = client.post(f"/staff/incidents/{incident}/select-file", content=body,
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    assert late.status_code == 403 and selected(engine) == 0
    client.cookies.clear()
    agent, password, secret = make_staff(engine, role="agent")
    sign_in_staff(client, agent.email, password, secret, clock)
    token = csrf_from(client.get("/staff").text)
    refused = client.post(f"/staff/incidents/{incident}/select-file", data={"csrf_token": token}, files=files)
    assert refused.status_code == 403 and selected(engine) == 0
