"""Render an email from its folder (`subject.txt`, `body.txt`, `body.html`) in the recipient's language."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jinja2

from portal import i18n
from portal.settings import TEMPLATES_DIR

EMAIL_NAMES = tuple(sorted(p.name for p in (TEMPLATES_DIR / "emails").iterdir() if p.is_dir() and p.name[0] != "_"))


@dataclasses.dataclass(frozen=True)
class ComposedEmail:
    to: str
    subject: str
    text: str
    html: str

    def as_payload(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class EmailComposer:
    """Renders emails with the same environment as the pages; a service gets one as a collaborator."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env

    def compose(self, name: str, *, to: str, language: str, context: Mapping[str, object]) -> ComposedEmail:
        with i18n.using_locale(language):
            subject = self.env.get_template(f"emails/{name}/subject.txt").render(context)
            text = self.env.get_template(f"emails/{name}/body.txt").render(context)
            html = self.env.get_template(f"emails/{name}/body.html").render(context)
        # A subject is one line: a stray newline would be a header injection waiting to happen.
        subject = " ".join(subject.split())
        return ComposedEmail(to=to, subject=subject, text=text.strip() + "\n", html=html)
