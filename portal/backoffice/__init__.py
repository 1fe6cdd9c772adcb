"""The back office: the staff request queue, request detail, reports and the audit trail."""
