"""encajes: tweet corpora to transformer embeddings, FAISS search and model comparison.

For notebooks::

    from pipeline import Workspace
    ws = Workspace("work/demo")
    ws.ingest(["data/sample_tweets.csv"])
    ws.embed(model="minilm", pooling="mean")
    ws.search("qué calor hace hoy", k=5)
"""

from pipeline.core.version import __version__

__all__ = ["Workspace", "__version__", "embed_texts"]


def __getattr__(name: str):
    """Import the API lazily: importing ``pipeline.core`` must not load torch and FAISS."""
    if name in ("Workspace", "embed_texts"):
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
