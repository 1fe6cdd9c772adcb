"""Browsing (/me/browsing): the pages viewed while browsing analytics was consented; writing page views."""
