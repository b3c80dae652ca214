"""Where split passages start: the chunker's word/sentence-aligned starts against the
previous rule (exactly ``overlap`` tokens back, wherever that lands).

For each collection, both chunkers (254 tokens, 32 overlap, the defaults) cut the same
documents; printed are the passages, how many of the split passages begin inside a word
or at punctuation (the character before is not whitespace), the mean tokens shared by
consecutive passages, and BM25 nDCG@10 over documents (MaxP, k1=1.2 b=0.75) so a change
of retrieval quality would show. BM25 only: nothing is encoded.

    python benchmarks/chunk_starts.py --collection lee=/work/data/lee \\
        --collection debian-faq=/work/data/debian-faq:dev

Collections are BEIR folders built by ``shortlist datasets build NAME --out DIR``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shortlist.corpus.chunking import Chunker, _best_break
from shortlist.evaluate.beir import load_beir
from shortlist.evaluate.metrics import ndcg
from shortlist.store.index import Index
from shortlist.types import Document, Passage, Run


class PreviousStarts(Chunker):
    """The chunker before the start alignment: the next window starts exactly
    ``overlap`` units before the previous one ended."""

    # Deliberately a copy of `Chunker._windows` as it was before the start alignment
    # (only the last line differs: no `_next_start`): the baseline this benchmark
    # compares against, so it must not follow the library's current code.

    def _windows(
        self, text: str, spans: list[tuple[int, int]], kept: list[bool]
    ) -> Iterator[tuple[int, int]]:
        n = len(spans)
        shortest = max(self.overlap + 1, self.size - self.size // 4)
        lo = 0
        while True:
            hi = min(lo + self.size, n)
            if hi < n:
                hi = _best_break(text, spans, kept, lo + shortest, hi, lo + self.overlap + 1)
            yield lo, hi
            if hi >= n:
                return
            lo = hi - self.overlap


def mid_word(doc: Document, passages: list[Passage]) -> int:
    return sum(1 for p in passages[1:] if not doc.text[p.start - 1].isspace())


def shared_tokens(chunker: Chunker, passages: list[Passage]) -> list[int]:
    tok = chunker._tokenizer()
    out = []
    for a, b in zip(passages, passages[1:], strict=False):
        if a.doc_id == b.doc_id and b.start < a.end:
            out.append(len(tok.encode(a.text[b.start - a.start :], add_special_tokens=False).ids))
    return out


def evaluate(name: str, directory: str, split: str) -> None:
    data = load_beir(directory, split=split)
    for label, chunker in (
        ("previous starts", PreviousStarts()),
        ("aligned starts", Chunker()),
    ):
        passages = [p for doc in data.corpus for p in chunker.chunk(doc)]
        by_doc: dict[str, list[Passage]] = {}
        for p in passages:
            by_doc.setdefault(p.doc_id, []).append(p)
        docs = {d.id: d for d in data.corpus}
        split_passages = sum(len(ps) - 1 for ps in by_doc.values())
        inside = sum(mid_word(docs[d], ps) for d, ps in by_doc.items())
        shared = shared_tokens(chunker, passages)
        with tempfile.TemporaryDirectory() as tmp:
            index = Index.create(Path(tmp) / "idx", data.corpus, dense=False, chunker=chunker)
            run: Run = {}
            for qid, text in data.queries.items():
                hits = index.search(text, k=101, mode="bm25", by="document").hits
                scores = {h.doc_id: h.score for h in hits}
                if data.ignore_identical_ids:
                    scores.pop(qid, None)
                run[qid] = scores
            index.close()
        score = statistics.fmean(ndcg(data.qrels, run, 10).values())
        print(
            f"{name:<12} {label:<16} passages {len(passages):>6}  split {split_passages:>5}  "
            f"starting mid-word {inside:>5} ({inside / max(1, split_passages):.1%})  "
            f"mean shared tokens {statistics.fmean(shared) if shared else 0:5.1f}  "
            f"BM25 nDCG@10 {score:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", action="append", required=True, help="NAME=DIR[:SPLIT]")
    args = parser.parse_args()
    for spec in args.collection:
        name, _, rest = spec.partition("=")
        directory, _, split = rest.partition(":")
        evaluate(name, directory, split or "test")


if __name__ == "__main__":
    main()
