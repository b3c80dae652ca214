"""Corpus readers and chunking: user files in, `Document` and `Passage` records out."""
