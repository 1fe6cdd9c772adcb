"""The JSON API and the webhooks for the retailer's systems (website, CRM, tills)."""
