"""Hosted reranking APIs (Cohere, Voyage, Jina), text-embeddings-inference `/rerank`, and
listwise reranking by an LLM behind an OpenAI-compatible chat endpoint.

Each class implements `shortlist.rerank.base.Reranker` over one shared HTTP transport
(`shortlist.rerank.api.http`) and reports `cost_units(query, documents)`.
"""

from shortlist.rerank.api.base import ApiReranker, CostEstimate
from shortlist.rerank.api.cohere import CohereReranker
from shortlist.rerank.api.http import JsonTransport, RetryPolicy, parse_retry_after
from shortlist.rerank.api.jina import JinaReranker
from shortlist.rerank.api.listwise import ListwiseReranker
from shortlist.rerank.api.tei import TEIReranker
from shortlist.rerank.api.voyage import VoyageReranker

__all__ = [
    "ApiReranker",
    "CohereReranker",
    "CostEstimate",
    "JinaReranker",
    "JsonTransport",
    "ListwiseReranker",
    "RetryPolicy",
    "TEIReranker",
    "VoyageReranker",
    "parse_retry_after",
]
