"""A realistic context for every email, shared by the contract and the delivery tests."""

from __future__ import annotations

from datetime import UTC, datetime

# A realistic context for every email; a test below fails when a new email has none.
EMAIL_SAMPLES: dict[str, dict[str, object]] = {
    "sign-in": {
        "link": "http://127.0.0.1:8000/signin/link?token=abc",
        "code": "123456",
        "minutes": 10,
        "first_name": "Camille",
    },
    "sign-in-unknown": {"portal_url": "http://127.0.0.1:8000"},
    "email-change-taken": {"portal_url": "http://127.0.0.1:8000"},
    "download-link": {
        "first_name": "Camille",
        "reference": "R-7K2Q-9XMD",
        "link": "http://127.0.0.1:8000/me/download/link?token=abc",
        "expires_at": datetime(2026, 11, 30, 10, tzinfo=UTC),
        "days": 7,
    },
    "erasure-completed": {
        "reference": "R-7K2Q-9XMD",
        "closed_with_it": ["R-3M8P-2QXC"],
        "deleted": [{"label": "Browsing history: the pages viewed on our website", "count": 1200}],
        "withdrawn": [{"label": "Consents still given, each withdrawn", "count": 2}],
        "anonymised": [
            {
                "label": "Purchases and invoices, kept for accounting but no longer linked to the person",
                "count": 35,
                "reason": "Legal obligation: invoices and accounting records must be kept (French Commercial Code, "
                "article L123-22).",
                "retention": "10 ans à compter de la clôture de l'exercice comptable",
            }
        ],
        "kept": [
            {
                "label": "A keyed hash of the email address (the address itself is deleted)",
                "count": 1,
                "reason": "So that a later import of customer records cannot recreate a profile for this address.",
            }
        ],
    },
    "email-change-confirm": {
        "first_name": "Camille",
        "new_email": "new@example.com",
        "hours": 24,
        "link": "http://127.0.0.1:8000/me/email/confirm?token=abc",
    },
    "email-change-requested": {"first_name": "Camille", "new_email": "new@example.com", "hours": 24},
    "email-changed": {"first_name": "", "new_email": "new@example.com"},
    "request-received": {
        "first_name": "Camille",
        "reference": "R-7K2Q-9XMD",
        "type": "rectification",
        "received_at": datetime(2026, 1, 31, 9, tzinfo=UTC),
        "due_at": datetime(2026, 2, 28, 22, 59, tzinfo=UTC),
    },
    **{
        name: {
            "first_name": "Camille",
            "reference": "R-7K2Q-9XMD",
            "type": "erasure",
            "received_at": datetime(2026, 1, 31, 9, tzinfo=UTC),
            "due_at": datetime(2026, 2, 28, 22, 59, tzinfo=UTC),
            **extra,
        }
        for name, extra in {
            "request-question": {"message": "Which store did you buy it in?"},
            "request-message": {"message": "We are looking into it."},
            "request-extended": {
                "reason": "Your data is spread across three systems.",
                "due_at": datetime(2026, 4, 30, 21, 59, tzinfo=UTC),
                "original_due_at": datetime(2026, 2, 28, 22, 59, tzinfo=UTC),
                "months": 2,
            },
            "request-completed": {"outcome": "Your data has been erased."},
            "request-rejected": {"reason": "The same request was answered last week."},
            "request-cancelled": {},
        }.items()
    },
    "inactivity-warning": {"first_name": "Camille", "on": datetime(2027, 1, 6, 3, 15, tzinfo=UTC), "period": "3 ans"},
    "incident-notice": {
        "first_name": "Camille",
        "reference": "INC-7K2Q-9XMD",
        "discovered_at": datetime(2026, 11, 20, 8, tzinfo=UTC),
        "nature": "A copy of our customer file was stolen.",
        "consequences": "You may receive fraudulent emails.",
        "measures": "We closed the access and filed a complaint.",
        "advice": "Be wary of emails asking for your bank details.",
    },
}
