"""The customer's profile (/me/profile): every field held, direct rectification, email change, correction requests."""
