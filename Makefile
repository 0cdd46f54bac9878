# Two commands for a new user: `make demo` (install, then embed and search the sample corpus)
# and `make test`. Both create .venv/ on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKDIR ?= work/demo
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU torch wheel first: a plain `torch` requirement would pull GBs of CUDA packages.
	# With CUDA, install your torch build into .venv first; the range in pyproject keeps it.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/encajes run data/sample_tweets.csv --workdir $(WORKDIR) --pooling mean --pooling cls
	HF_HUB_OFFLINE=1 $(BIN)/encajes search --workdir $(WORKDIR) -k 5 "Qué ganas de ir a la playa este verano"

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) work
