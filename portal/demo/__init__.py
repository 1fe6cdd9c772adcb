"""The demo: a deterministic, realistic dataset for Maison Aubépine, generated into an empty database."""
