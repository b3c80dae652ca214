"""Corpus readers and chunking: user files in, `Document` and `Passage` records out."""

from shortlist.corpus.chunking import Chunker
from shortlist.corpus.readers import FORMATS, BadRecord, CsvColumns, read_corpus

__all__ = ["FORMATS", "BadRecord", "Chunker", "CsvColumns", "read_corpus"]
