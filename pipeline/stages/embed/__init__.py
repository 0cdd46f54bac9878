"""The embed stage: the corpus through an encoder run by an engine into L2-normalised vectors,
written in resumable shards and assembled into ``embeddings.pt`` (or ``vectors.npy``)."""
