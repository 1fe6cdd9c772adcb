"""Download my data: the streamed portability archive (Art. 15 and 20) and the emailed download link.

datasets.py (fields and streamed rows), report.py (index.html and processing.json), archive.py (the ZIP stream),
service.py (recording downloads as requests, the link), views.py (/me/download), schemas/ (JSON Schema per file).
"""
