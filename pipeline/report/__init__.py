"""Comparisons: several models x poolings on one corpus, every pair tested, the report written as
Markdown, HTML and JSON; ``chain`` runs the whole pipeline (``encajes run``)."""
