"""The index stage: a FAISS index per run (exact, or approximate tuned to a target recall that is
measured against exact search)."""
