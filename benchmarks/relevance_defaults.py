"""Relevance defaults: sweep BM25 k1/b, chunking, split-document scoring and hybrid fusion on
real collections, and check the shipped defaults against bm25s and against their own parts.

Encoding is the cost, so every passage text is encoded once (vectors are cached by text
hash under ``--cache``) and each collection is indexed once per chunking variant; BM25
k1/b variants reuse the index (`BM25Index.with_params`) and every fusion variant reuses
the same per-query BM25 and dense runs. Metrics are the harness's (`shortlist.evaluate
.metrics.ndcg`, trec_eval's nDCG@10) over documents: a split document scores as its best
passage (MaxP), unless a table says otherwise.

Collections are BEIR folders built by ``shortlist datasets build NAME --out DIR``; each is
given as NAME=DIR[:SPLIT] (debian-faq has no test split: use ``dev``).

Usage:
    python benchmarks/relevance_defaults.py --cache /work/data/cache \\
        --collection lee=/work/data/lee --collection stdlib-docs=/work/data/stdlib-docs \\
        --collection debian-faq=/work/data/debian-faq:dev \\
        [--tables bm25,chunking,fusion,bm25s,length,defaults,previous] \\
        [--chunking-on lee,stdlib-docs,debian-faq:tokens-254/32] [--dump runs.pkl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.corpus.chunking import Chunker
from shortlist.evaluate.beir import Dataset, load_beir
from shortlist.evaluate.metrics import ndcg
from shortlist.retrieve.encoder import Encoder
from shortlist.retrieve.fusion import fuse, ranked
from shortlist.store.index import HybridConfig, Index
from shortlist.types import Qrels, Run

DEPTH = 1000  # passages per first-stage run (documents are aggregated from these)
FUSION_DEPTH = 100  # per side, as HybridConfig's default
DOC_DEPTH = 100  # documents kept per query for the metric

K1_B_GRID: tuple[tuple[float, float], ...] = (
    (0.9, 0.4), (1.2, 0.75), (1.5, 0.75),
    (0.6, 0.4), (1.2, 0.4), (0.9, 0.6), (1.2, 0.6), (1.5, 0.6),
    (0.9, 0.75), (1.2, 0.9), (1.5, 0.9), (1.8, 0.75), (2.0, 0.75), (1.2, 0.3),
)  # fmt: skip

CHUNKINGS: dict[str, Chunker | None] = {
    "whole": None,  # one passage per document
    "words-200/40": Chunker(size=200, overlap=40, unit="words"),
    "words-100/20": Chunker(size=100, overlap=20, unit="words"),
    "tokens-254/32": Chunker(size=254, overlap=32, unit="tokens"),
    "tokens-128/16": Chunker(size=128, overlap=16, unit="tokens"),
}

BM25_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


class CachedEncoder:
    """The default encoder, with vectors cached on disk by text hash (benchmark only).

    Same `identity` and `spec` as the wrapped encoder, so indexes built with it open with
    the real one.
    """

    def __init__(self, inner: Encoder, folder: Path) -> None:
        self.inner = inner
        self.spec = "default"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._keys_path = folder / "keys.json"
        self._vecs_path = folder / "vectors.npy"
        self._keys: dict[str, int] = {}
        self._vecs = np.zeros((0, inner.dim), dtype=np.float32)
        if self._keys_path.exists() and self._vecs_path.exists():
            self._keys = json.loads(self._keys_path.read_text())
            self._vecs = np.load(self._vecs_path)
        self.encoded = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def identity(self) -> dict[str, Any]:
        return self.inner.identity

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        hashes = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        missing = list(dict.fromkeys(h for h in hashes if h not in self._keys))
        if missing:
            by_hash = dict(zip(hashes, texts, strict=True))
            todo = [by_hash[h] for h in missing]
            t = time.perf_counter()
            new = self.inner.encode(todo, batch_size=batch_size, show_progress=show_progress)
            self.encoded += len(todo)
            if len(todo) > 20:
                print(f"  encoded {len(todo)} texts in {time.perf_counter() - t:.0f}s", flush=True)
            base = len(self._vecs)
            self._vecs = np.concatenate([self._vecs, new.astype(np.float32)])
            self._keys.update({h: base + i for i, h in enumerate(missing)})
            if len(todo) > 20:
                self.save()
        return self._vecs[[self._keys[h] for h in hashes]]

    def save(self) -> None:
        np.save(self._vecs_path, self._vecs)
        self._keys_path.write_text(json.dumps(self._keys))


def whole_chunker() -> Chunker:
    """A chunker that never splits (one window wider than any document)."""
    return Chunker(size=1 << 40, overlap=0, unit="words")


def index_for(
    cache: Path, name: str, dataset: Dataset, variant: str, encoder: CachedEncoder
) -> Index:
    path = cache / "indexes" / f"{name}--{variant.replace('/', '-')}"
    try:
        return Index.open(path, encoder=encoder)  # type: ignore[arg-type]
    except Exception:
        pass
    chunker = CHUNKINGS[variant] or whole_chunker()
    t = time.perf_counter()
    index = Index.create(
        path, dataset.corpus, encoder=encoder, chunker=chunker, overwrite=True  # type: ignore[arg-type]
    )
    print(f"  built {name} {variant}: {index.num_passages} passages from "
          f"{index.num_documents} documents in {time.perf_counter() - t:.0f}s", flush=True)
    return index


# ---- per-query passage runs and document aggregation ------------------------------------

PassageRun = dict[str, list[tuple[int, float]]]  # query id -> [(row, score)] best first


def bm25_runs(index: Index, queries: Mapping[str, str], k1: float, b: float) -> PassageRun:
    bm25 = index._bm25.with_params(k1=k1, b=b)
    out: PassageRun = {}
    for qid, text in queries.items():
        rows, scores = bm25.search(index.analyzer.analyze(text), DEPTH)
        out[qid] = list(zip(rows.tolist(), scores.tolist(), strict=True))
    return out


def dense_runs(index: Index, queries: Mapping[str, str], encoder: CachedEncoder) -> PassageRun:
    assert index._vectors is not None
    qids = list(queries)
    vecs = encoder.encode([queries[q] for q in qids])
    out: PassageRun = {}
    for qid, vec in zip(qids, vecs, strict=True):
        rows, scores = index._vectors.search(vec, DEPTH)
        out[qid] = list(zip(rows.tolist(), scores.tolist(), strict=True))
    return out


class RowMap:
    """Row -> (document id, chunk number) for one index."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._cache: dict[int, tuple[str, int]] = {}

    def __call__(self, rows: Iterable[int]) -> list[tuple[str, int]]:
        rows = list(rows)
        todo = [r for r in rows if r not in self._cache]
        if todo:
            for r, p in zip(todo, self._index._docs.get(todo), strict=True):
                self._cache[r] = (p.doc_id, int(p.id.rsplit("#", 1)[1]))
        return [self._cache[r] for r in rows]


def to_docs(run: PassageRun, rowmap: RowMap, how: str = "maxp") -> Run:
    """Passage runs to document runs: MaxP (best passage), first passage only, or sum."""
    out: Run = {}
    for qid, pairs in run.items():
        docs: dict[str, float] = {}
        where = rowmap(r for r, _ in pairs)
        for (doc, chunk), (_, score) in zip(where, pairs, strict=True):
            if how == "maxp":
                if doc not in docs:
                    docs[doc] = score
            elif how == "first":
                if chunk == 0:
                    docs[doc] = score
            elif how == "sum":
                docs[doc] = docs.get(doc, 0.0) + score
            else:
                raise ValueError(how)
        out[qid] = dict(ranked(docs, DOC_DEPTH))
    return out


def fused(
    a: PassageRun, b: PassageRun, method: str, weights: tuple[float, float]
) -> PassageRun:
    config = HybridConfig(method=method, weights=weights, depth=FUSION_DEPTH)
    out: PassageRun = {}
    for qid in a:
        runs = [dict(a[qid][:FUSION_DEPTH]), dict(b[qid][:FUSION_DEPTH])]
        out[qid] = ranked(config.fuse(runs), DEPTH)
    return out


def peak(pairs: Sequence[tuple[int, float]], kind: str) -> float:
    """How far a run's best score stands out: (s1 - mean) / std or (s1 - s2) / std."""
    scores = np.asarray([s for _, s in pairs[:FUSION_DEPTH]], dtype=np.float64)
    if len(scores) < 3 or scores.std() == 0:
        return 1e-6
    top = scores[0] - (scores.mean() if kind == "top1" else scores[1])
    return max(float(top / scores.std()), 1e-6)


def adaptive(
    a: PassageRun, b: PassageRun, method: str, kind: str, power: float
) -> PassageRun:
    """Label-free per-query weights: each run weighted by peak(run) ** power (experimental)."""
    out: PassageRun = {}
    for qid in a:
        wa, wb = peak(a[qid], kind) ** power, peak(b[qid], kind) ** power
        runs = [dict(a[qid][:FUSION_DEPTH]), dict(b[qid][:FUSION_DEPTH])]
        out[qid] = ranked(fuse(method, runs, weights=[wa / (wa + wb), wb / (wa + wb)]), DEPTH)
    return out


ADAPTIVE = [(f"adaptive {m}, w ~ {k}-peak^{p}", m, k, p)
            for m in ("zscore", "dbsf") for k in ("top1", "gap") for p in (1, 4)]


def mean_ndcg(qrels: Qrels, run: Run) -> float:
    values = ndcg(qrels, run, 10)
    return float(np.mean(list(values.values())))


def fmt_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- tables -----------------------------------------------------------------------------


def table_bm25(sets: dict[str, Dataset], whole: dict[str, Index]) -> str:
    rows = []
    for k1, b in K1_B_GRID:
        row: list[Any] = [f"{k1}/{b}"]
        for name, ds in sets.items():
            index = whole[name]
            row.append(mean_ndcg(ds.qrels, to_docs(bm25_runs(index, ds.queries, k1, b),
                                                   RowMap(index))))
        rows.append(row)
    return fmt_table(["k1/b (whole passages)", *sets], rows)


def table_chunking(
    sets: dict[str, Dataset], indexes: dict[tuple[str, str], Index], encoder: CachedEncoder,
    k1: float, b: float,
) -> str:
    rows = []
    for name, ds in sets.items():
        whole_bm25 = None
        for variant in CHUNKINGS:
            index = indexes.get((name, variant))
            if index is None:
                continue
            rowmap = RowMap(index)
            bm = bm25_runs(index, ds.queries, k1, b)
            de = dense_runs(index, ds.queries, encoder)
            if variant == "whole":
                whole_bm25 = to_docs(bm, rowmap)
            n_split = index.num_passages - index.num_documents
            rows.append([
                name, variant, f"{index.num_passages} (+{n_split})",
                mean_ndcg(ds.qrels, to_docs(bm, rowmap, "maxp")),
                mean_ndcg(ds.qrels, to_docs(bm, rowmap, "first")),
                mean_ndcg(ds.qrels, to_docs(bm, rowmap, "sum")),
                mean_ndcg(ds.qrels, to_docs(de, rowmap, "maxp")),
                mean_ndcg(ds.qrels, to_docs(de, rowmap, "first")),
                mean_ndcg(ds.qrels, to_docs(de, rowmap, "sum")),
                (mean_ndcg(ds.qrels, doc_fuse(whole_bm25, to_docs(de, rowmap)))
                 if whole_bm25 is not None else "-"),
            ])
    return fmt_table(
        ["collection", "chunking", "passages", "BM25 MaxP", "BM25 first", "BM25 sum",
         "dense MaxP", "dense first", "dense sum", "whole-doc BM25 + dense MaxP (RRF)"],
        rows,
    )


def doc_fuse(a: Run, b: Run) -> Run:
    return {qid: dict(ranked(fuse("rrf", [a[qid], b[qid]]), DOC_DEPTH)) for qid in a}


FUSION_VARIANTS: list[tuple[str, str, tuple[float, float]]] = [
    ("rrf", "rrf", (1.0, 1.0)),
    *[(f"rrf w={w}", "rrf", (w, 1 - w)) for w in BM25_WEIGHTS if w != 0.5],
    *[(f"{m} w={w}", m, (w, 1 - w)) for m in ("minmax", "zscore", "dbsf") for w in BM25_WEIGHTS],
]


def table_fusion(
    sets: dict[str, Dataset], whole: dict[str, Index], encoder: CachedEncoder,
    k1: float, b: float,
) -> tuple[str, dict[str, dict[str, float]]]:
    scores: dict[str, dict[str, float]] = {}
    for name, ds in sets.items():
        index = whole[name]
        rowmap = RowMap(index)
        bm = bm25_runs(index, ds.queries, k1, b)
        de = dense_runs(index, ds.queries, encoder)
        col = scores.setdefault(name, {})
        col["BM25"] = mean_ndcg(ds.qrels, to_docs(bm, rowmap))
        col["dense"] = mean_ndcg(ds.qrels, to_docs(de, rowmap))
        for label, method, weights in FUSION_VARIANTS:
            col[label] = mean_ndcg(ds.qrels, to_docs(fused(bm, de, method, weights), rowmap))
        for label, method, kind, power in ADAPTIVE:
            col[label] = mean_ndcg(ds.qrels, to_docs(adaptive(bm, de, method, kind, power),
                                                     rowmap))
    labels = ["BM25", "dense", *(v[0] for v in FUSION_VARIANTS), *(v[0] for v in ADAPTIVE)]
    rows = []
    for label in labels:
        row: list[Any] = [label]
        worst = 1.0
        for name in sets:
            value = scores[name][label]
            best_part = max(scores[name]["BM25"], scores[name]["dense"])
            worst = min(worst, value - best_part)
            row.append(value)
        row.append(f"{worst:+.4f}")
        rows.append(row)
    header = [f"fusion (BM25 {k1}/{b}, whole passages; w = BM25 weight)", *sets,
              "worst gap to better part"]
    return fmt_table(header, rows), scores


LONG_WORDS = ((12, 24), (16, 32), (20, 40), (24, 48), (32, 64))
LONG_W = (0.7, 0.8, 0.9, 1.0)


def table_length(sets: dict[str, Dataset], cache: Path, encoder: CachedEncoder) -> str:
    """The default fusion's query-length rule against fixed weights: min-max, BM25 weight
    0.3 for queries of up to LO words, WL from HI words on, linear in between, over each
    collection's default index (default chunking and k1/b), documents by MaxP."""
    rows: list[list[Any]] = []
    runs = {}
    for name, ds in sets.items():
        path = cache / "indexes" / f"{name}--defaults"
        try:
            index = Index.open(path, encoder=encoder)  # type: ignore[arg-type]
        except Exception:
            index = Index.create(path, ds.corpus, encoder=encoder, overwrite=True)  # type: ignore[arg-type]
        k1, b = index.manifest["bm25"]["k1"], index.manifest["bm25"]["b"]
        rowmap = RowMap(index)
        bm = bm25_runs(index, ds.queries, k1, b)
        de = dense_runs(index, ds.queries, encoder)
        best = max(mean_ndcg(ds.qrels, to_docs(bm, rowmap)),
                   mean_ndcg(ds.qrels, to_docs(de, rowmap)))
        words = np.asarray([len(t.split()) for t in ds.queries.values()])
        runs[name] = (ds, rowmap, bm, de, best, words)

    def gaps(config: HybridConfig) -> list[float]:
        out = []
        for ds, rowmap, bm, de, best, _ in runs.values():
            run: PassageRun = {}
            for qid in bm:
                sides = [dict(bm[qid][:FUSION_DEPTH]), dict(de[qid][:FUSION_DEPTH])]
                run[qid] = ranked(config.fuse(sides, ds.queries[qid]), DEPTH)
            out.append(mean_ndcg(ds.qrels, to_docs(run, rowmap)) - best)
        return out

    for w in (0.3, 0.5, 0.7, 0.9):
        g = gaps(HybridConfig("minmax", FUSION_DEPTH, 60, (w, 1 - w)))
        rows.append([f"fixed w={w}", *(f"{x:+.4f}" for x in g), f"{min(g):+.4f}"])
    for lo, hi in LONG_WORDS:
        for wl in LONG_W:
            config = HybridConfig("minmax", FUSION_DEPTH, 60, (0.3, 0.7), (wl, round(1 - wl, 12)),
                                  (lo, hi))
            g = gaps(config)
            rows.append([f"w=0.3 to wl={wl}, {lo}-{hi} words", *(f"{x:+.4f}" for x in g),
                         f"{min(g):+.4f}"])
    lengths = "; ".join(
        f"{n}: median {np.median(r[5]):.0f}, p90 {np.percentile(r[5], 90):.0f}, "
        f"max {r[5].max()} words" for n, r in runs.items()
    )
    return fmt_table(["min-max fusion (BM25 weight)", *(f"{n} - better part" for n in sets),
                      "worst"], rows) + f"\n\nquery lengths: {lengths}"


def table_bm25s(sets: dict[str, Dataset], whole: dict[str, Index]) -> str:
    """Shortlist's default BM25 against bm25s at its own defaults, over whole passages."""
    import bm25s
    import Stemmer

    rows = []
    for name, ds in sets.items():
        index = whole[name]
        ours = bm25_runs(index, ds.queries, *default_k1_b())
        ours_ndcg = mean_ndcg(ds.qrels, to_docs(ours, RowMap(index)))
        texts = [f"{d.title}\n{d.text}" if d.title else d.text for d in ds.corpus]
        ids = [d.id for d in ds.corpus]
        results = []
        for label, kwargs in (
            ("bm25s defaults (no stopwords, no stemmer)", {}),
            ("bm25s defaults + en stopwords + Snowball stemmer",
             {"stopwords": "en", "stemmer": Stemmer.Stemmer("english")}),
        ):
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, show_progress=False, **kwargs),
                            show_progress=False)
            run: Run = {}
            qids = list(ds.queries)
            qtok = bm25s.tokenize([ds.queries[q] for q in qids], show_progress=False, **kwargs)
            docs, scores = retriever.retrieve(qtok, k=min(DOC_DEPTH, len(texts)),
                                              show_progress=False, n_threads=1)
            for qid, drow, srow in zip(qids, docs, scores, strict=True):
                run[qid] = {ids[int(d)]: float(s) for d, s in zip(drow, srow, strict=True)
                            if float(s) > 0}
            results.append((label, mean_ndcg(ds.qrels, run)))
        for label, value in results:
            rows.append([name, f"shortlist default BM25 {default_k1_b()}", ours_ndcg,
                         label, value, f"{ours_ndcg - value:+.4f}"])
    return fmt_table(["collection", "shortlist", "nDCG@10", "bm25s", "nDCG@10",
                      "shortlist - bm25s"], rows)


def default_k1_b() -> tuple[float, float]:
    import inspect

    params = inspect.signature(Index.create).parameters
    return float(params["k1"].default), float(params["b"].default)


PREVIOUS_DEFAULTS: dict[str, Any] = {
    "k1": 0.9,
    "b": 0.4,
    "chunker": Chunker(size=200, overlap=40, unit="words"),
    "hybrid": HybridConfig(method="rrf", weights=(0.5, 0.5)),
}
"""The index settings shipped before issue #10, for the before/after table."""


def table_defaults(
    sets: dict[str, Dataset], cache: Path, encoder: CachedEncoder, previous: bool = False
) -> str:
    """BM25, dense and hybrid through `Index.search` with every index setting at its default
    (or, with `previous`, at the defaults shipped before issue #10)."""
    rows = []
    settings = PREVIOUS_DEFAULTS if previous else {}
    for name, ds in sets.items():
        path = cache / "indexes" / f"{name}--{'previous-' if previous else ''}defaults"
        index = Index.create(path, ds.corpus, encoder=encoder, overwrite=True,  # type: ignore[arg-type]
                             **settings)
        row: list[Any] = [name, f"{index.num_passages}/{index.num_documents}"]
        values = {}
        for mode in ("bm25", "dense", "hybrid"):
            run: Run = {}
            for qid, text in ds.queries.items():
                hits = index.search(text, k=DOC_DEPTH, mode=mode, by="document").hits
                run[qid] = {h.doc_id: float(len(hits) - i) for i, h in enumerate(hits)}
            values[mode] = mean_ndcg(ds.qrels, run)
            row.append(values[mode])
        row.append(f"{values['hybrid'] - max(values['bm25'], values['dense']):+.4f}")
        rows.append(row)
    h, bm = index.hybrid, index.manifest["bm25"]
    c = index.chunker
    return fmt_table(
        ["collection", "passages/docs", f"BM25 {bm['k1']}/{bm['b']}", "dense",
         f"hybrid ({h.method}, weights {h.weights}, long queries {h.long_weights} from "
         f"{h.long_words[1]} words)", "hybrid - better part"],
        rows,
    ) + f"\n\nchunking: {c.size}/{c.overlap} {c.unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collection", action="append", required=True,
                        help="NAME=DIR[:SPLIT], repeatable")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--tables", default="bm25,chunking,fusion,bm25s,defaults")
    parser.add_argument("--chunking-on", default="lee,stdlib-docs",
                        help="collections to build chunking variants for: NAME (every "
                        "variant) or NAME:V1+V2, comma-separated")
    parser.add_argument("--variants", default=",".join(CHUNKINGS))
    parser.add_argument("--dump", type=Path, default=None,
                        help="write each collection's qrels and whole-passage BM25/dense runs "
                        "(pickle) for offline analysis of fusion rules")
    args = parser.parse_args()
    tables = set(args.tables.split(","))

    from shortlist.retrieve.encoders import load_encoder

    encoder = CachedEncoder(load_encoder("default"), args.cache / "vectors")
    sets: dict[str, Dataset] = {}
    for item in args.collection:
        name, _, rest = item.partition("=")
        folder, _, split = rest.partition(":")
        sets[name] = load_beir(folder, split or "test")
        ds = sets[name]
        print(f"{name}: {len(ds.corpus)} documents, {len(ds.queries)} queries "
              f"({split or 'test'})", flush=True)

    indexes: dict[tuple[str, str], Index] = {}
    chunk_sets: dict[str, list[str]] = {}
    if "chunking" in tables:
        for item in args.chunking_on.split(","):
            name, _, only = item.partition(":")
            chunk_sets[name] = only.split("+") if only else args.variants.split(",")
    for name, ds in sets.items():
        variants = chunk_sets.get(name, ["whole"])
        if "whole" not in variants:
            variants = ["whole", *variants]
        for variant in variants:
            indexes[(name, variant)] = index_for(args.cache, name, ds, variant, encoder)
    whole = {name: indexes[(name, "whole")] for name in sets}
    k1, b = default_k1_b()

    out: list[tuple[str, str]] = []
    steps: list[tuple[str, Callable[[], str]]] = [
        ("bm25", lambda: table_bm25(sets, whole)),
        ("chunking", lambda: table_chunking(
            {n: d for n, d in sets.items() if n in chunk_sets}, indexes, encoder, k1, b)),
        ("fusion", lambda: table_fusion(sets, whole, encoder, k1, b)[0]),
        ("bm25s", lambda: table_bm25s(sets, whole)),
        ("length", lambda: table_length(sets, args.cache, encoder)),
        ("defaults", lambda: table_defaults(sets, args.cache, encoder)),
        ("previous", lambda: table_defaults(sets, args.cache, encoder, previous=True)),
    ]
    for key, step in steps:
        if key in tables:
            t = time.perf_counter()
            text = step()
            print(f"\n## {key} ({time.perf_counter() - t:.0f}s)\n\n{text}\n", flush=True)
            out.append((key, text))
    if args.dump is not None:
        import pickle

        dump = {}
        for name, ds in sets.items():
            index = whole[name]
            rowmap = RowMap(index)
            bm = bm25_runs(index, ds.queries, k1, b)
            de = dense_runs(index, ds.queries, encoder)
            dump[name] = {
                "qrels": ds.qrels,
                "queries": ds.queries,
                "bm25": {q: [(rowmap([r])[0][0], s) for r, s in v] for q, v in bm.items()},
                "dense": {q: [(rowmap([r])[0][0], s) for r, s in v] for q, v in de.items()},
            }
        args.dump.write_bytes(pickle.dumps(dump))
    encoder.save()


if __name__ == "__main__":
    main()
