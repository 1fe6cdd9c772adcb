"""The consent banner for the retailer's website: its script, its public endpoints, and its monthly figures."""
