"""The domain's errors that several capabilities share, and that the web layer maps to one answer each.

    LookupError
    └── NotFound                   views answer 404 (the app's handler), the API its own 404
        ├── CustomerNotFound       no customer with that id (or no longer: erased customers are tombstones)
        └── RequestNotFound        no privacy request with that reference

Errors that belong to one capability (a refused transition, an invalid form) live in that capability's service.
"""

from __future__ import annotations


class NotFound(LookupError):
    """What the caller named does not exist."""


class CustomerNotFound(NotFound):
    """No customer with this id."""


class RequestNotFound(NotFound):
    """No privacy request with this reference."""
