"""Text -> vectors, in the sentence-transformers mould: one concept a module.

- ``transformer``: tokenizer + Hugging Face encoder -> token embeddings (CPU speed-ups in ``cpu_kernels``)
- ``pooling``: token embeddings -> one vector per text (mean over real tokens, or CLS), and normalize
- ``encoder``: the three chained over length-sorted batches, chunk by chunk
- ``loading``: ``EmbedSettings`` -> resolved settings (device, dtype, pooling, prefix) -> a loaded Encoder

Nothing here reads or writes a workdir: the embed stage, search and the API all load encoders from here.
"""
