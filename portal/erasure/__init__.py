"""Erasure (GDPR Art. 17) and the tombstone that every writer of customers checks."""
