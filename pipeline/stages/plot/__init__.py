"""The plot stage: a 2-D UMAP projection of a run, drawn as ``umap.png`` and ``umap.html``."""
