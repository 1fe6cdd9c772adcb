"""Staff back office: sign-in (password + TOTP), sessions, roles and staff accounts."""
