"""Customer sign-in: emailed link and code, server-side sessions, rate limits."""
