"""Reading what stages wrote: the corpus, stored embeddings, runs, label names, and the workdir's
status; plus the shape of a stage that works on one run."""
