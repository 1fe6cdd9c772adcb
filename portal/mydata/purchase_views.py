"""Placeholder: routes arrive with the page (issue 3)."""

routes: list = []
