"""Purchases (/me/purchases): every receipt in every store and the web shop, with totals; writing purchases."""
