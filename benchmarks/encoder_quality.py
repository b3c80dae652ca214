"""Dense retrieval quality of each encoder backend against a torch (fp32) reference index.

Opens (or builds) a reference index of a BEIR-layout dataset encoded with
`default` (sentence-transformers, torch), builds one index per backend with the
reference's own chunking, and prints dense nDCG@10 and recall@100 (by document) for
every backend next to the reference: the int8 quality bar is nDCG@10 within 0.005 of
fp32 on every collection.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/encoder_quality.py \
        --dataset /work/data/stdlib-docs --reference /work/data/cache/indexes/stdlib-docs--whole \
        --work /work/data/cache/encoder-quality [--backends onnx-int8 openvino-int8] [--split test]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument(
        "--reference", type=Path, required=True, help="torch index (or where to build it)"
    )
    parser.add_argument("--work", type=Path, required=True, help="where backend indexes go")
    parser.add_argument("--backends", nargs="+", default=["onnx-int8", "openvino-int8"])
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--reference-model",
        default="default",
        help="encoder of a reference built here; default?backend=onnx is torch to 1e-7, faster",
    )
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from shortlist.threads import apply_threads, default_threads

    threads = args.threads or default_threads()
    apply_threads(threads)

    import sys

    from shortlist.corpus.chunking import Chunker
    from shortlist.errors import IndexNotFoundError
    from shortlist.evaluate.beir import load_beir
    from shortlist.evaluate.metrics import evaluate
    from shortlist.progress import progress_for
    from shortlist.store.index import Index

    dataset = load_beir(args.dataset, split=args.split)
    queries = {q: t for q, t in sorted(dataset.queries.items()) if q in dataset.qrels}
    if args.max_queries is not None:
        queries = dict(list(queries.items())[: args.max_queries])
    try:
        reference = Index.open(args.reference, num_threads=threads)
    except IndexNotFoundError:
        reference = Index.create(
            args.reference,
            dataset.corpus,
            encoder=args.reference_model,
            progress=progress_for(sys.stderr),
            num_threads=threads,
        )
    chunker = Chunker.from_dict(dict(reference.manifest["chunker"]))
    print(
        f"dataset={args.dataset.name} queries={len(queries)} passages={reference.num_passages} "
        f"chunker={reference.manifest['chunker']} threads={threads}"
    )

    def score(index: Index) -> tuple[float, float]:
        run = {}
        for qid, text in queries.items():
            ranking = index.search(text, k=100, mode="dense", by="document")
            run[qid] = {h.doc_id: h.score for h in ranking.hits}
        per_query = evaluate(dataset.qrels, run, ["ndcg@10", "recall@100"])
        n = len(queries)
        return (sum(per_query["ndcg@10"].values()) / n, sum(per_query["recall@100"].values()) / n)

    ref_ndcg, ref_recall = score(reference)
    print(f"{'backend':<16} {'ndcg@10':>8} {'delta':>8} {'recall@100':>10}")
    ref_name = str(reference.manifest["dense"]["encoder"])
    print(f"{ref_name[:16]:<16} {ref_ndcg:>8.4f} {'':>8} {ref_recall:>10.4f}", flush=True)
    for backend in args.backends:
        path = args.work / f"{args.dataset.name}-{backend}"
        try:
            index = Index.open(path, num_threads=threads)
        except IndexNotFoundError:
            t = time.perf_counter()
            index = Index.create(
                path,
                dataset.corpus,
                encoder=f"default?backend={backend}",
                chunker=chunker,
                progress=progress_for(sys.stderr),
                num_threads=threads,
            )
            print(f"  built {backend} index in {time.perf_counter() - t:.0f}s", flush=True)
        ndcg, recall = score(index)
        print(f"{backend:<16} {ndcg:>8.4f} {ndcg - ref_ndcg:>+8.4f} {recall:>10.4f}", flush=True)


if __name__ == "__main__":
    main()
