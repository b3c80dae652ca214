"""The Milvus store against the local index on a real BEIR collection: same rankings?

Builds the local index (`Index.create`, what `shortlist index` builds) and a Milvus Lite
collection (`MilvusIndex.create`, what `shortlist index --store milvus:...` builds) from
the same corpus, with the same encoder spec (each store loads the model and computes its
own vectors), then runs every judged query through BM25, dense and hybrid on both, as
documents (each document's best passage, as `shortlist eval` ranks them), and reports:

- top-10 overlap: |local top-10 & Milvus top-10| / 10, averaged over queries, and the
  share of queries whose top-10 is identical in order;
- nDCG@10 of each store against the qrels;
- the largest absolute score difference between the two stores' common hits;
- for contrast, BM25 as Milvus alone would run it (raw text, Milvus's analyzer), to show
  the gap that handing Milvus shortlist's analyzed terms closes;
- Milvus Lite's throughput (queries one at a time, one process) beside the local
  index's. Milvus Lite is a pure-Python stand-in for tests and laptops, slow by design:
  these are not Milvus server numbers.

Usage: HF_HUB_OFFLINE=1 python benchmarks/milvus_equivalence.py /work/data/lee \
           [--model default] [--work DIR] [--reuse] [--repeats 3] [--throughput-queries N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from shortlist.corpus.chunking import Chunker
from shortlist.evaluate.beir import load_beir
from shortlist.evaluate.metrics import ndcg
from shortlist.retrieve.encoders import load_encoder
from shortlist.store.index import Index
from shortlist.store.milvus import MilvusIndex, MilvusTarget

MODES = ("bm25", "dense", "hybrid")
K = 10


def doc_run(index: Index, queries: dict[str, str], mode: str, ignore_own: bool) -> dict[str, Any]:
    """query id -> [(doc id, score)] top-K documents (the query's own document left out
    when the collection says so, as `shortlist eval` does)."""
    out: dict[str, Any] = {}
    for qid, text in queries.items():
        ranking = index.search(text, k=K + 1, mode=mode, by="document")
        hits = [(h.doc_id, h.score) for h in ranking if not (ignore_own and h.doc_id == qid)]
        out[qid] = hits[:K]
    return out


def compare(local: dict[str, Any], milvus: dict[str, Any]) -> dict[str, float]:
    overlaps, same_order, diffs = [], 0, [0.0]
    for qid, hits in local.items():
        a, b = [d for d, _ in hits], [d for d, _ in milvus[qid]]
        overlaps.append(len(set(a) & set(b)) / K)
        same_order += a == b
        bs = dict(milvus[qid])
        diffs.extend(abs(s - bs[d]) for d, s in hits if d in bs)
    return {
        "overlap": statistics.fmean(overlaps),
        "min_overlap": min(overlaps),
        "same_order": same_order / len(local),
        "max_score_diff": max(diffs),
    }


def mean_ndcg(qrels: Any, run: dict[str, Any]) -> float:
    scores = ndcg(qrels, {q: dict(h) for q, h in run.items()}, k=K)
    return statistics.fmean(scores.values())


def milvus_own_analyzer_run(
    uri: str, passages: list[Any], queries: dict[str, str], ignore_own: bool
) -> dict[str, Any]:
    """BM25 the way Milvus alone would do it: raw text into a field analyzed by Milvus
    (standard tokenizer, lowercase, Lucene's English stopwords; no stemmer, which Milvus
    Lite lacks), raw query text. Documents ranked by their best passage."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from shortlist.retrieve.analyzer import ENGLISH_STOPWORDS

    client = MilvusClient(uri)
    name = "own_analyzer"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=True)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    analyzer = {"tokenizer": "standard",
                "filter": ["lowercase", {"type": "stop", "stop_words": sorted(ENGLISH_STOPWORDS)}]}
    schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                     analyzer_params=analyzer)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    params = client.prepare_index_params()
    k1b = {"bm25_k1": 1.2, "bm25_b": 0.75}
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={**k1b, "params": k1b})
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")
    client.insert(name, [{"doc_id": p.doc_id, "text": (p.title + "\n" + p.text).strip()}
                         for p in passages])
    out: dict[str, Any] = {}
    for qid, text in queries.items():
        hits = client.search(name, data=[text], anns_field="sparse", limit=100,
                             output_fields=["doc_id"], search_params={"metric_type": "BM25"})[0]
        ranked = sorted(((abs(h["distance"]), h["row"], h["entity"]["doc_id"]) for h in hits),
                        key=lambda x: (-x[0], x[1]))
        docs: dict[str, float] = {}
        for score, _row, doc in ranked:
            if not (ignore_own and doc == qid):
                docs.setdefault(doc, score)
        out[qid] = list(docs.items())[:K]
    client.close()
    return out


def store_ms(index: Index, calls: list[Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for call in calls:
            call(index)
        best = min(best, (time.perf_counter() - t) * 1000.0 / len(calls))
    return best


def per_query_ms(index: Index, queries: list[str], mode: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        if hasattr(index, "forget_queries"):
            index.forget_queries()  # both stores embed each query afresh
        t = time.perf_counter()
        for q in queries:
            index.search(q, k=K, mode=mode)
        best = min(best, (time.perf_counter() - t) * 1000.0 / len(queries))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--model", default="default")
    ap.add_argument("--work", type=Path, default=None, help="where the indexes go (temp)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reuse", action="store_true",
                    help="open the indexes a previous run left in --work instead of building")
    ap.add_argument("--throughput-queries", type=int, default=None,
                    help="time only the first N queries (default: all)")
    args = ap.parse_args()

    data = load_beir(args.dataset)
    queries = dict(sorted(data.queries.items()))
    encoder = load_encoder(args.model)
    work = args.work or Path(tempfile.mkdtemp(prefix="milvus-equivalence-"))

    t = time.perf_counter()
    if args.reuse:
        local = Index.open(work / "local", encoder=encoder)
    else:
        local = Index.create(work / "local", data.corpus, encoder=args.model, overwrite=True)
    local_build = time.perf_counter() - t
    target = MilvusTarget.parse(f"milvus:{work / 'lite.db'}?collection=equivalence")
    t = time.perf_counter()
    if args.reuse:
        milvus = Index.open(work / "milvus", encoder=encoder)
    else:
        milvus = MilvusIndex.create(
            work / "milvus", data.corpus, target=target, encoder=args.model, overwrite=True
        )
    milvus_build = time.perf_counter() - t
    print(f"{args.dataset.name}: {local.num_documents} documents, {local.num_passages} "
          f"passages, {len(queries)} judged queries; encoder {encoder.identity.get('model')}")
    verb = "open" if args.reuse else "build (encoding included)"
    print(f"{verb}: local {local_build:.1f} s, Milvus Lite {milvus_build:.1f} s")
    print()
    print("| first stage | top-10 overlap (mean) | min | identical order | max score diff "
          "| nDCG@10 local | nDCG@10 Milvus |")
    print("|---|---|---|---|---|---|---|")
    for mode in MODES:
        a = doc_run(local, queries, mode, data.ignore_identical_ids)
        b = doc_run(milvus, queries, mode, data.ignore_identical_ids)
        c = compare(a, b)
        print(f"| {mode} | {c['overlap']:.4f} | {c['min_overlap']:.2f} | "
              f"{c['same_order']:.2%} | {c['max_score_diff']:.2e} | "
              f"{mean_ndcg(data.qrels, a):.4f} | {mean_ndcg(data.qrels, b):.4f} |")
    own = milvus_own_analyzer_run(
        str(work / "lite.db"), list(Chunker().chunk_many(data.corpus)), queries,
        data.ignore_identical_ids,
    )
    a = doc_run(local, queries, "bm25", data.ignore_identical_ids)
    c = compare(a, own)
    print(f"| bm25, Milvus's own analyzer (raw text; no stemming) | {c['overlap']:.4f} | "
          f"{c['min_overlap']:.2f} | {c['same_order']:.2%} | n/a | "
          f"{mean_ndcg(data.qrels, a):.4f} | {mean_ndcg(data.qrels, own):.4f} |")
    print()
    texts = list(queries.values())[: args.throughput_queries]
    # The store's own work: the query is analyzed and embedded once, outside the clock
    # (embedding a Lee article costs the same on both stores and would swamp the
    # difference), then each store's search call is timed, k=10.
    terms = [local.analyze(t) for t in texts]
    vectors = [local.embed_query(t) for t in texts]
    print("| store call, k=10 | local ms/query | Milvus Lite ms/query | Milvus Lite QPS |")
    print("|---|---|---|---|")
    for name, calls in (
        ("bm25_search", [lambda s, t=t: s.bm25_search(t, K, allowed=None) for t in terms]),
        ("vector_search", [lambda s, v=v: s.vector_search(v, K, allowed=None) for v in vectors]),
    ):
        lo = store_ms(local, calls, args.repeats)
        mi = store_ms(milvus, calls, args.repeats)
        print(f"| {name} | {lo:.2f} | {mi:.2f} | {1000.0 / mi:.1f} |")
    print()
    print("| first stage, end to end (query embedding included) | local ms/query "
          "| Milvus Lite ms/query |")
    print("|---|---|---|")
    for mode in MODES:
        lo = per_query_ms(local, texts, mode, args.repeats)
        mi = per_query_ms(milvus, texts, mode, args.repeats)
        print(f"| {mode} | {lo:.2f} | {mi:.2f} |")
    local.close()
    milvus.close()


if __name__ == "__main__":
    main()
