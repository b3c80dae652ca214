"""Build src/shortlist/data/calibration_pairs.jsonl: int8 calibration pairs from real text.

Source: the Lee background corpus (Lee, Pincombe & Welsh 2005; 300 Australian news
articles) as shipped in gensim's test data. For each of the first 150 articles, a
pseudo-query is a mid-article sentence cut to its first 12 words; the positive passage
is the article's first 160 words, the negative is another article's. Real sentence
and passage lengths are what matters for calibrating activation ranges.

    python scripts/make_calibration_pairs.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gensim.test.utils import datapath

OUT = Path(__file__).resolve().parents[1] / "src/shortlist/data/calibration_pairs.jsonl"


def main() -> None:
    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        docs = [" ".join(line.split()) for line in f if line.strip()]
    pairs = []
    for i, doc in enumerate(docs[:150]):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", doc) if len(s.split()) >= 6]
        if len(sentences) < 2:
            continue
        query = " ".join(sentences[len(sentences) // 2].split()[:12]).rstrip(".,")
        positive = " ".join(doc.split()[:160])
        negative = " ".join(docs[(i + 97) % len(docs)].split()[:160])
        pairs.append({"query": query, "passage": positive, "relevant": True})
        pairs.append({"query": query, "passage": negative, "relevant": False})
    with OUT.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(f"wrote {len(pairs)} pairs to {OUT}")


if __name__ == "__main__":
    main()
