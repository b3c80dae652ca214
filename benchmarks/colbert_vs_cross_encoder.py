"""ColBERT (late interaction) against a cross-encoder of the same backbone: rerank latency.

Both rerankers are all-MiniLM-L6-v2's real encoder (the offline default model, 6 layers,
hidden size 384) under seeded random heads, so they cost what a MiniLM-sized model of
each kind costs (their scores mean nothing, so no quality is reported):

- `colbert:` a PyLate-format checkpoint written here: the encoder with the [Q]/[D]
  marker tokens added, a 384->128 Dense projection, query_length 32, document_length 180;
- `cross-encoder:` the encoder under a 1-logit head, max_length 256.

Candidates are real passages: the 350 Lee news articles (gensim's test data, the
`datasets` extra) cut by shortlist's chunker into passages of at most 120 tokens; each
query is the opening words of one of the 50 Lee query articles, and its K candidates are
a seeded random draw (latency depends on lengths, not on relevance). For K = 100 and
500 it reports per-query latency (p50 / max over the queries) of

- cross-encoder: `CrossEncoderReranker.rerank` (one forward pass per (query, passage));
- colbert: `ColbertReranker.rerank` (encodes the query once and each passage, MaxSim);
- colbert, stored documents: the query encoding and MaxSim alone, the passages' token
  vectors computed beforehand and kept in float16, as they would be if stored in the
  index at index time (shortlist does not store them yet); with the disk that would
  take, and how far float16 moves a raw score from the exact one.

    PYTHONPATH=src python benchmarks/colbert_vs_cross_encoder.py --threads 2 --queries 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def lee_passages(max_tokens: int) -> tuple[list[str], list[str]]:
    """(query texts, passages): Lee query articles' first 24 words, chunked articles."""
    from shortlist.corpus.chunking import Chunker
    from shortlist_datasets.lee import make_collection

    collection = make_collection()
    chunker = Chunker(size=max_tokens, overlap=16, unit="tokens")
    passages = [p.text for p in chunker.chunk_many(collection.corpus)]
    queries = [" ".join(text.split()[:24]) for text in collection.queries.values()]
    return queries, passages


def build_colbert(folder: Path, dim: int = 128) -> Path:
    """all-MiniLM-L6-v2 as a PyLate-format ColBERT with a seeded random projection."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    from shortlist.retrieve.encoder import default_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    tokenizer.add_tokens(["[Q] ", "[D] "])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModel.from_pretrained(default_model_path())
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    hidden = int(model.config.hidden_size)
    (folder / "1_Dense").mkdir()
    (folder / "1_Dense" / "config.json").write_text(json.dumps({
        "in_features": hidden, "out_features": dim, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity", "use_residual": False,
    }))
    weight = torch.nn.Linear(hidden, dim, bias=False).weight.detach().contiguous()
    save_file({"linear.weight": weight}, str(folder / "1_Dense" / "model.safetensors"))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ]))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({
        "model_type": "ColBERT", "query_prefix": "[Q] ", "document_prefix": "[D] ",
        "query_length": 32, "document_length": 180, "do_query_expansion": True,
        "attend_to_expansion_tokens": False,
    }))
    return folder


def build_cross_encoder(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from shortlist.retrieve.encoder import default_model_path

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BertForSequenceClassification.from_pretrained(default_model_path(), num_labels=1)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(str(folder))
    return folder


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - started) * 1000.0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queries", type=int, default=3, help="queries timed per K")
    ap.add_argument("-k", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--passage-tokens", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from shortlist.rerank.colbert import ColbertReranker, maxsim
    from shortlist.rerank.cross_encoder import CrossEncoderReranker

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="shortlist-colbert-bench-"))
    colbert_dir = build_colbert(work / "colbert")
    cross_dir = build_cross_encoder(work / "cross")
    colbert = ColbertReranker(str(colbert_dir))
    cross = CrossEncoderReranker(str(cross_dir))
    queries, passages = lee_passages(args.passage_tokens)
    lengths = [len(w) for w in colbert.encode_documents(passages)[0]]
    print(f"{len(passages)} Lee passages, {statistics.mean(lengths):.0f} tokens on average "
          f"({min(lengths)}-{max(lengths)}, markers included); threads={args.threads}")
    colbert.rerank(queries[0], passages[:8])  # warm up both
    cross.rerank(queries[0], passages[:8])

    rng = random.Random(args.seed)
    results: dict[str, Any] = {"passages": len(passages), "threads": args.threads, "k": {}}
    print(f"{'K':>4} {'reranker':<32} {'p50 ms':>9} {'max ms':>9} {'per doc ms':>11}")
    for k in args.k:
        if k > len(passages):
            raise SystemExit(f"K={k} is more than the {len(passages)} passages")
        rows: dict[str, list[float]] = {"cross-encoder": [], "colbert": [],
                                        "colbert, stored documents": []}
        stored_bytes, worst = 0, 0.0
        for query in queries[: args.queries]:
            candidates = rng.sample(passages, k)
            rows["cross-encoder"].append(timed(cross.rerank, query, candidates)[0])
            elapsed, ranking = timed(colbert.rerank, query, candidates)
            rows["colbert"].append(elapsed)
            windows, _ = colbert.encode_documents(candidates)
            stored = [v.astype(np.float16) for v in colbert.document_embeddings(windows)]
            stored_bytes = sum(v.nbytes for v in stored)

            def from_store(query: str, stored: list[np.ndarray]) -> list[float]:
                q = colbert.query_embeddings([colbert.encode_query(query)])[0]
                return [maxsim(q, d.astype(np.float32)) for d in stored]

            elapsed, scores = timed(from_store, query, stored)
            rows["colbert, stored documents"].append(elapsed)
            exact = [h.raw_score or 0.0 for h in sorted(ranking, key=lambda h: h.index or 0)]
            worst = max(worst, float(np.abs(np.subtract(exact, scores)).max()))
        results["k"][k] = {name: times for name, times in rows.items()}
        for name, times in rows.items():
            p50 = statistics.median(times)
            print(f"{k:>4} {name:<32} {p50:>9.1f} {max(times):>9.1f} {p50 / k:>11.2f}")
        ratio = statistics.median(rows["cross-encoder"]) / statistics.median(rows["colbert"])
        stored_ratio = statistics.median(rows["cross-encoder"]) / statistics.median(
            rows["colbert, stored documents"])
        print(f"{k:>4} cross-encoder / colbert: {ratio:.2f}x; / colbert with stored "
              f"documents: {stored_ratio:.0f}x")
        per_passage = stored_bytes / k
        print(f"{k:>4} stored token vectors in float16: {per_passage / 1024:.1f} KiB per "
              f"passage, {per_passage * len(passages) / 2**20:.1f} MiB for all "
              f"{len(passages)} passages; float16 moved a raw score by at most {worst:.4f}")
        results["k"][k]["stored_kib_per_passage"] = per_passage / 1024
        results["k"][k]["float16_max_abs_score_change"] = worst
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
