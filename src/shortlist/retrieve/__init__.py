"""The first stage: BM25, dense and hybrid retrieval over an index."""
