"""Teacher scores for distillation, computed once per group and cached in the work dir.

The teacher is any reranker spec (`shortlist.rerank.registry.load_reranker`). Its raw
scores are used (a cross-encoder's logit, a bi-encoder's cosine): MarginMSE matches
score differences, so only their scale matters, not their offset. Pair scorers
(`score_pairs`) get all pairs in large batches; other rerankers get one `rerank`
call per group and their hits are put back in input order through `Hit.index`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError
from shortlist.train.negatives import Group

_CHUNK_GROUPS = 2048  # large chunks: a pair scorer dedupes passages within a call


def groups_fingerprint(spec: str, groups: Sequence[Group], passages: Mapping[str, str]) -> str:
    h = hashlib.sha256(spec.encode())
    for g in groups:
        h.update(json.dumps([g.query, *g.texts(passages)]).encode())
    return h.hexdigest()[:24]


def teacher_scores(
    spec: str,
    groups: Sequence[Group],
    passages: Mapping[str, str],
    work: Path,
    *,
    load: Any = None,
) -> np.ndarray:
    """Raw teacher scores, shape (groups, 1 + negatives), float32; cached in `work`.

    `load` builds the reranker from `spec` (default `load_reranker`; tests pass fakes).
    """
    path = work / f"teacher-{groups_fingerprint(spec, groups, passages)}.npy"
    if path.is_file():
        cached: np.ndarray = np.load(path)
        return cached
    if load is None:
        from shortlist.rerank.registry import load_reranker

        load = load_reranker
    reranker = load(spec)
    width = len(groups[0].passage_ids) if groups else 0
    scores = np.zeros((len(groups), width), dtype=np.float32)
    for start in range(0, len(groups), _CHUNK_GROUPS):
        chunk = groups[start : start + _CHUNK_GROUPS]
        scores[start : start + len(chunk)] = _score_chunk(reranker, chunk, passages, width)
    if not np.all(np.isfinite(scores)):
        raise InvalidInputError(f"teacher {spec!r} returned non-finite scores")
    work.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, scores)
    tmp.replace(path)
    return scores


def _score_chunk(
    reranker: Any, chunk: Sequence[Group], passages: Mapping[str, str], width: int
) -> np.ndarray:
    if hasattr(reranker, "score_pairs"):
        pairs = [(g.query, t) for g in chunk for t in g.texts(passages)]
        raw = np.asarray(reranker.score_pairs(pairs), dtype=np.float32)
        return raw.reshape(len(chunk), width)
    out = np.zeros((len(chunk), width), dtype=np.float32)
    for row, g in enumerate(chunk):
        ranking = reranker.rerank(g.query, g.texts(passages))
        for hit in ranking.hits:
            if hit.index is None or hit.raw_score is None:
                raise InvalidInputError(
                    f"teacher {reranker.name!r} gives no raw scores; use a cross-encoder, "
                    "bi-encoder or API reranker as teacher"
                )
            out[row, hit.index] = hit.raw_score
    return out
