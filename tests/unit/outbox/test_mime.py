"""Every email as it leaves: the raw bytes, parsed back as a mail client would, say exactly what was written.

The emails are found from their folders (`EMAIL_NAMES`), so a new email is covered as soon as it has a sample.
"""

from __future__ import annotations

import base64
import quopri
import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from portal.mail.compose import EMAIL_NAMES, ComposedEmail
from portal.outbox.mime import mime_bytes
from tests.conftest import email_composer
from tests.email_samples import EMAIL_SAMPLES
from tests.web.test_contract import JOINED_SENTENCES, visible_text

SENDER = "Maison Aubépine <dpo@maison-aubepine.example>"
ENCODED_WORD = re.compile(r"=\?([^?]+)\?([bBqQ])\?([^?]*)\?=")


def strict_rfc2047(value: str) -> str:
    """Decode a header as RFC 2047 says and Thunderbird and Apple Mail do (Python's parser is more forgiving).

    Whitespace between two encoded-words is dropped; each encoded-word is decoded on its own, so one that ends in the
    middle of a character fails rather than being mended.
    """
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", value)
    decoded, position, after_encoded_word = [], 0, False
    for word in ENCODED_WORD.finditer(unfolded):
        between = unfolded[position : word.start()]
        if not (after_encoded_word and not between.strip(" \t")):
            decoded.append(between)
        charset, encoding, data = word.groups()
        raw = base64.b64decode(data) if encoding in "bB" else quopri.decodestring(data.encode(), header=True)
        decoded.append(raw.decode(charset))
        position, after_encoded_word = word.end(), True
    decoded.append(unfolded[position:])
    return "".join(decoded)


def raw_header(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers leave ASCII only: encoded-words, no raw UTF-8
    match = re.search(rf"^{name}: (.*?)\r\n(?![ \t])", head + "\r\n", re.M | re.S | re.I)
    assert match, f"no {name} header"
    return match.group(1)


def composed(name: str, language: str) -> ComposedEmail:
    return email_composer().compose(name, to="camille@example.com", language=language, context=EMAIL_SAMPLES[name])


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_email_reads_back_exactly_as_written(name: str, language: str) -> None:
    email = composed(name, language)
    raw = mime_bytes(email.as_payload(), sender=SENDER)
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")), "a line is longer than RFC 5322 allows"
    assert strict_rfc2047(raw_header(raw, "Subject")) == email.subject
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == email.subject
    text, html = parsed.get_body(preferencelist=("plain",)), parsed.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # On the wire every line ends in CRLF; the parser gives the lines back as they were.
    assert text.get_content().replace("\r\n", "\n") == email.text
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == email.html.rstrip("\n")
    assert f'<html lang="{language}">' in email.html
    for body in (email.text, visible_text(email.html)):
        joined = JOINED_SENTENCES.search(body)
        assert not joined, f"two sentences run together: {body[joined.start() - 30 : joined.end() + 20]!r}"


@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_email_is_written_in_each_language(name: str) -> None:
    french, english = composed(name, "fr"), composed(name, "en")
    assert french.subject != english.subject, f"{name}: the same subject in French and English"
    assert french.text != english.text and french.html != english.html


@pytest.mark.parametrize(
    "subject",
    [
        "Votre adresse e-mail chez Maison Aubépine a été modifiée",
        "Votre demande R-7K2Q-9XMD a été traitée : la réponse est disponible – Maison Aubépine",
        "Maison Aubépine : votre lien de téléchargement, valable sept jours, pour l'archive de vos données",
    ],
)
def test_subjects_keep_their_spaces_where_the_folding_falls(subject: str) -> None:
    raw = mime_bytes({"to": "a@example.com", "subject": subject, "text": "x", "html": "<p>x</p>"}, sender=SENDER)
    assert strict_rfc2047(raw_header(raw, "Subject")) == subject


def test_the_sender_s_name_reads_back_whole() -> None:
    raw = mime_bytes({"to": "a@example.com", "subject": "s", "text": "x", "html": "<p>x</p>"}, sender=SENDER)
    assert strict_rfc2047(raw_header(raw, "From")) == SENDER
