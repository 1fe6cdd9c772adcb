"""Bringing the retailer's own data in: customers, stores, purchases, consents and page views, from files and API."""
