"""The domain's errors that several capabilities share, and that the web layer maps to one answer each.

    LookupError
    └── NotFound                   views answer 404 (the app's handler), the API its own 404
        ├── CustomerNotFound       no customer with that id (or no longer: erased customers are tombstones)
        ├── RequestNotFound        no privacy request with that reference (or another customer's: the same answer)
        └── PurchaseNotFound       no such purchase for this customer (or someone else's: the same answer)

Errors that belong to one capability (a refused transition, an invalid form) live in that capability's service.
"""

from __future__ import annotations


class NotFound(LookupError):
    """What the caller named does not exist."""


class CustomerNotFound(NotFound):
    """No customer with this id."""


class RequestNotFound(NotFound):
    """Unknown reference, or another customer's: the same answer, so references cannot be probed."""


class PurchaseNotFound(NotFound):
    """No such purchase for this customer: it does not exist or it is someone else's (one answer for both)."""
