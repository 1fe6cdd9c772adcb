"""Consent: the purpose register, the consent ledger, the privacy policy page."""
