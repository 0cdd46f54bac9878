"""Embedding throughput, encajes vs sentence-transformers (same as `encajes bench embed`).

.venv/bin/python bench/embed.py ../shared/data/tweeteval_emoji/val.csv --dtype fp32
.venv/bin/python bench/embed.py ../shared/data/tweeteval_emoji/val.csv --dtype bf16 --rounds 3
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli import main

if __name__ == "__main__":
    main(["bench", "embed", *sys.argv[1:]])
