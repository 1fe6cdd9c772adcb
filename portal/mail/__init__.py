"""Email: rendering from templates/emails/<name>/, the outbox, SMTP delivery and the demo mailbox."""
