"""The request lifecycle: types, states, legal due dates, references, notifications."""
