"""encajes: tweet corpora to transformer embeddings, FAISS search and model comparison.

For notebooks::

    from pipeline import Workspace
    ws = Workspace("work/demo")
    ws.ingest(["data/sample_tweets.csv"])
    ws.embed(model="minilm", pooling="mean")
    ws.search("qué calor hace hoy", k=5)
"""

__version__ = "0.1.0"

from pipeline.api import Workspace, embed_texts

__all__ = ["Workspace", "__version__", "embed_texts"]
