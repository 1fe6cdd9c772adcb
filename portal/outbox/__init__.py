"""The outbox: emails and webhook events written in the action's transaction, delivered later by the worker."""
