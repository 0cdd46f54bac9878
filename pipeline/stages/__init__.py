"""One folder per stage of the chain (ingest, embed, index, probe with its baselines, plot). A stage
folder imports core, artifacts, encoders, engines, indexes and render, never another stage."""
