"""What the integrity features of an index cost: the file table (sha256 of every new file)
at commit, the size check and reader pin at open, and `shortlist check`.

Builds a synthetic index (random Zipf-ish words, ~100 words a passage; hashing:256 vectors
with --dense so no model is needed), then times: the create, the file table of the
create's generation on its own, an add of one document (its table reuses the checksums of
hardlinked files), opening the index, and a full check (every checksum and every passage).

Usage: python benchmarks/index_integrity.py [--n-docs 50000] [--dense] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from shortlist.store.files import file_table
from shortlist.store.generations import current_generation
from shortlist.store.health import check_index
from shortlist.store.index import Index
from shortlist.types import Document


def corpus(n: int, seed: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(30000)])
    ranks = np.minimum(rng.zipf(1.1, size=n * 100) - 1, len(vocab) - 1)
    words = vocab[ranks].reshape(n, 100)
    return [Document(f"d{i}", " ".join(row)) for i, row in enumerate(words.tolist())]


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-docs", type=int, default=50000)
    parser.add_argument("--dense", action="store_true")
    parser.add_argument("--out", default=None, help="Folder for the index (default: a temp dir).")
    args = parser.parse_args()
    base = Path(args.out or tempfile.mkdtemp(prefix="integrity-"))
    root = base / "idx"
    docs = corpus(args.n_docs)
    index, t_create = timed(
        lambda: Index.create(root, docs, dense=args.dense, encoder="hashing:256", overwrite=True)
    )
    gen = current_generation(root)
    assert gen is not None
    table, t_table = timed(lambda: file_table(gen))
    size = sum(e["bytes"] for e in table.values())
    _, t_add = timed(lambda: index.add([Document("extra", "one more document")]))
    index.close()
    opened, t_open = timed(lambda: Index.open(root))
    opened.close()
    report, t_check = timed(lambda: check_index(root))
    assert report.healthy
    print(
        json.dumps(
            {
                "n_docs": args.n_docs,
                "dense": args.dense,
                "files": len(table),
                "bytes": size,
                "create_s": round(t_create, 3),
                "file_table_s": round(t_table, 3),
                "file_table_share_of_create": round(t_table / t_create, 3),
                "add_one_doc_s": round(t_add, 3),
                "open_s": round(t_open, 3),
                "check_all_generations_s": round(t_check, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
