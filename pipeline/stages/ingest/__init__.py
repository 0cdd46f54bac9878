"""The ingest stage: tweet files (CSV/TSV, JSON lines, JSON arrays, Twitter v2 pages, parquet) into
``corpus.parquet``, every row kept or rejected with its reason; emoji labels and tweet normalisation."""
