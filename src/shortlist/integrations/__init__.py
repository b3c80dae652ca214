"""Adapters that plug shortlist into RAG frameworks, each behind its own extra.

- `shortlist.integrations.langchain` (`pip install -e '.[langchain]'`):
  `ShortlistRerank`, a document compressor, and `ShortlistRetriever`, a retriever
  over a shortlist `Index`.
- `shortlist.integrations.llamaindex` (`pip install -e '.[llamaindex]'`):
  `ShortlistRerank`, a node postprocessor.

Nothing here is imported by `import shortlist`; import the module of your framework.
"""
