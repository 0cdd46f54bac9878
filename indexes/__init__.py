"""FAISS index kinds and their pure choices: ``exact`` (flat inner product, a block scan for vectors
beyond memory, torch on a GPU), ``approximate`` (which kind for a corpus, its build, its search-setting
ladder and recall against exact search), all behind the ``VectorIndex`` interface of ``base``."""
