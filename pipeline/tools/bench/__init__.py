"""The benchmarks: each compares two things in one run and reports the ratio (embedding against
sentence-transformers, index kinds against exact search, tuned probes against the fixed protocol)."""
