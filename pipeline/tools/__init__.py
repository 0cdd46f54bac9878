"""Commands beside the chain: sentence similarity and fill-mask from the course, and the benchmarks
(``encajes bench embed|index|probe``)."""
