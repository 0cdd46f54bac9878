"""Similarity search over a run: the ``Searcher`` (index, corpus rows, query encoder) used by the CLI,
the Python API and the server, and the ``encajes search`` command's result."""
