"""Cross-encoder reranking: one model call per (query, passage) pair, any backend.

`CrossEncoderReranker` loads a sequence-classification model (Hugging Face hub id or
local folder) and scores pairs with the backend named in `backend`
(see `shortlist.runtime.BACKENDS`).

Scores
    A 1-label model's raw score is its logit; calibrated = sigmoid(logit).
    A 2-label model's raw score is the margin `logit[1] - logit[0]` (label 1 = relevant);
    calibrated = softmax(logits)[1], which equals sigmoid(margin).

Long documents are never silently truncated
    Every pair is `[query] + [passage window]` of at most `max_length` tokens. A passage
    that does not fit is cut into overlapping windows (consecutive windows share
    `window_stride` tokens, Hugging Face's `stride` meaning; default `max_length // 4`),
    every window is scored, and the document's score aggregates its windows:
    `max` (default, as Cohere and Elasticsearch do), `mean`, or `first`. The hit's
    `window` names the deciding window (argmax for `max`, 0 for `first`, None for
    `mean`) for documents that needed more than one window; it is None otherwise.
    The query is the only thing ever truncated: to its first `max_length // 2` tokens.

Batching
    All pairs are tokenized once, sorted by length and packed into batches whose padded
    size (rows x longest row) stays within `batch_tokens`; each batch is padded only to
    its own longest row, and scores are returned in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.rerank.base import (
    NO_OPTIONS,
    Candidate,
    RerankOptions,
    ScoringPlan,
    calibrate,
    candidate_text,
    rerank_planned,
)
from shortlist.rerank.windows import (
    aggregate_windows,
    check_model_options,
    default_batch_tokens,
    distinct_units,
    rank_windows,
)
from shortlist.runtime import Backend, BackendOptions, load_backend
from shortlist.runtime.models import (
    cut_to_tokens,
    load_config_and_tokenizer,
    pack_batches,
    require_fast_tokenizer,
    resolve_model_path,
)
from shortlist.types import Ranking
from shortlist.validate import check_candidates


@dataclass(frozen=True, slots=True)
class EncodedPairs:
    """Tokenized windows: `owner[w]` is the pair that window `w` belongs to."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    owner: np.ndarray


@dataclass(frozen=True, slots=True)
class Window:
    """One scoring unit of a cross-encoder: a tokenized `[query] + [passage window]`."""

    input_ids: list[int]
    token_type_ids: list[int] | None


def _positions_limit(config: Any) -> int | None:
    limit = getattr(config, "max_position_embeddings", None)
    if limit is None:
        return None
    if config.model_type in {"roberta", "xlm-roberta", "camembert", "xlm-roberta-xl"}:
        # RoBERTa-style position ids start after the padding index.
        limit -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return int(limit)


class CrossEncoderReranker:
    """A `Reranker` and `PairScorer` over a sequence-classification cross-encoder.

    - `model`: Hugging Face hub id (resolved through the HF cache) or local folder;
    - `backend`: a key of `shortlist.runtime.BACKENDS` (torch, torch-int8,
      onnx, onnx-int8, openvino, openvino-int8); unknown names raise `SpecError`;
    - `max_length`: tokens per (query, window) pair; default
      min(model positions, tokenizer.model_max_length, 512);
    - `batch_tokens`: bound on rows x padded length of one model call (>= max_length);
      default `CPU_BATCH_TOKENS` on CPU, `GPU_BATCH_TOKENS` on an accelerator;
    - `aggregate`, `window_stride`: long-document windows (module docstring);
    - `cache_dir`: where exported ONNX/OpenVINO artifacts are kept (default: the
      per-user cache, `shortlist.runtime.default_cache_dir`);
    - `device`: "cpu" (default) or e.g. "cuda";
    - `num_threads`: intra-op threads; for torch backends this calls the process-wide
      `torch.set_num_threads`, for ONNX Runtime it sets the session's thread pool;
    - `sort_by_length`: pack batches by length (True; False exists to measure its gain).

    Raises `ModelLoadError` when the model cannot be found or loaded, or is not a 1- or
    2-label classifier; `InvalidInputError` for bad options.
    """

    def __init__(
        self,
        model: str,
        *,
        backend: str = "torch",
        max_length: int | None = None,
        batch_tokens: int | None = None,
        aggregate: str = "max",
        window_stride: int | None = None,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        name: str | None = None,
        num_threads: int | None = None,
        sort_by_length: bool = True,
    ) -> None:
        check_model_options(aggregate, num_threads)
        path = resolve_model_path(model)
        config, tokenizer = load_config_and_tokenizer(path)
        causal = [a for a in getattr(config, "architectures", None) or []
                  if a.endswith("ForCausalLM")]
        if causal:
            raise ModelLoadError(
                f"{model} is a causal language model ({causal[0]}), not a sequence "
                f"classifier; load it as llm-reranker:{model}"
            )
        require_fast_tokenizer(tokenizer, model)
        num_labels = int(config.num_labels)
        if num_labels not in (1, 2):
            raise ModelLoadError(
                f"{model} has {num_labels} labels; a cross-encoder needs 1 (relevance logit) "
                "or 2 (not relevant, relevant)"
            )
        limits = [512, _positions_limit(config), getattr(tokenizer, "model_max_length", None)]
        default_max = min(int(x) for x in limits if x is not None)
        self._max_length = int(max_length) if max_length is not None else default_max
        specials = tokenizer.num_special_tokens_to_add(pair=True)
        self._specials = int(specials)
        self._max_query = self._max_length // 2
        room = self._max_length - self._max_query - specials
        if room < 8:
            raise InvalidInputError(f"max_length {self._max_length} is too small for pairs")
        overlap = self._max_length // 4 if window_stride is None else int(window_stride)
        if not 0 <= overlap < room:
            raise InvalidInputError(
                f"window_stride must be in [0, {room}) for max_length {self._max_length}"
            )
        if batch_tokens is None:
            batch_tokens = max(default_batch_tokens(device), self._max_length)
        if batch_tokens < self._max_length:
            raise InvalidInputError(
                f"batch_tokens ({batch_tokens}) must be >= max_length ({self._max_length})"
            )
        self._overlap = overlap
        self._batch_tokens = int(batch_tokens)
        self._aggregate = aggregate
        self._sort = sort_by_length
        self._tokenizer = tokenizer
        self._num_labels = num_labels
        self._want_token_types = "token_type_ids" in tokenizer.model_input_names
        self._pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self._backend_name = backend
        self._backend: Backend = load_backend(
            backend,
            BackendOptions(
                model_path=path,
                cache_dir=Path(cache_dir) if cache_dir is not None else None,
                num_threads=num_threads,
                device=device,
            ),
        )
        suffix = "" if backend == "torch" else f"?backend={backend}"
        self._name = name or f"cross-encoder:{model}{suffix}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def backend(self) -> str:
        return self._backend_name

    @property
    def num_labels(self) -> int:
        return self._num_labels

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def calibration(self) -> str:
        """The `calibrate` kind for this model: sigmoid (1 label) or softmax (2 labels)."""
        return "sigmoid" if self._num_labels == 1 else "softmax"

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores (logit, or margin for 2 labels) -> [0, 1]."""
        raw = np.asarray(raw, dtype=np.float64)
        if self._num_labels == 1:
            return calibrate(raw, "sigmoid")
        return calibrate(np.stack([np.zeros_like(raw), raw], axis=1), "softmax")

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        """Score every candidate against `query`; best first, ties by input position."""
        return rerank_planned(self, query, documents, top_n)

    # ---- the scoring protocol (shortlist.rerank.base.PlannedReranker) -------------
    @property
    def supported_options(self) -> frozenset[str]:
        return frozenset({"max_tokens_per_doc", "max_chunks_per_doc"})

    def plan(
        self, query: str, documents: Sequence[Candidate], options: RerankOptions = NO_OPTIONS
    ) -> ScoringPlan:
        """Step 1: cut texts per `options`, cut the query, tokenize into windows.

        Each unit is one `Window` of at most `max_length` tokens; `owner` maps it to its
        candidate. `max_tokens_per_doc` keeps a text's first N tokens; `max_chunks_per_doc`
        the part covered by its first N windows. Both must be >= 1.
        """
        originals = [candidate_text(c) for c in documents]
        check_candidates(query, originals)
        texts = self.cut_texts(
            query,
            originals,
            max_tokens_per_doc=options.max_tokens_per_doc,
            max_chunks_per_doc=options.max_chunks_per_doc,
        )
        encoded = self.encode([query] * len(texts), texts)
        types = encoded.token_type_ids
        units = tuple(
            Window(ids, types[w] if types is not None else None)
            for w, ids in enumerate(encoded.input_ids)
        )
        return ScoringPlan(
            query=query,
            n_documents=len(texts),
            units=units,
            tokens=tuple(len(ids) for ids in encoded.input_ids),
            owner=tuple(encoded.owner.tolist()),
        )

    def score_units(self, units: Sequence[Window]) -> np.ndarray:
        """Step 2: the raw score of each window (logit, or label-1 margin for 2 labels).

        Identical windows (a document repeated in a request, or across the requests a
        batcher merged) are run once and share one score: no wasted forward passes, and
        equal inputs tie exactly, whatever row of a multi-threaded matmul they landed in.
        """
        if not units:
            return np.zeros(0, dtype=np.float64)
        distinct, inverse = distinct_units(
            units,
            lambda u: (
                tuple(u.input_ids),
                tuple(u.token_type_ids) if u.token_type_ids is not None else None,
            ),
        )
        first = distinct[0].token_type_ids
        encoded = EncodedPairs(
            [u.input_ids for u in distinct],
            [u.token_type_ids or [] for u in distinct] if first is not None else None,
            np.zeros(len(distinct), dtype=np.int64),
        )
        return np.asarray(self._window_scores(self._run(encoded)))[inverse]

    def finish(
        self,
        plan: ScoringPlan,
        scores: np.ndarray,
        documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking:
        """Step 3: each candidate's windows aggregated (`aggregate`), calibrated, ranked."""
        return rank_windows(plan, scores, documents, top_n, self._aggregate, self.calibrate)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw scores, one float64 per (query, passage) pair, in input order.

        A passage split into windows gets its windows aggregated (`aggregate`).
        """
        raw, _ = self._score([q for q, _ in pairs], [p for _, p in pairs])
        return raw

    def window_logits(self, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Per-window logits, shape (windows, num_labels), and the pair index of each window."""
        encoded = self.encode([q for q, _ in pairs], [p for _, p in pairs])
        return self._run(encoded), encoded.owner

    def encode(self, queries: Sequence[str], passages: Sequence[str]) -> EncodedPairs:
        """Tokenize pairs into windows of at most `max_length` tokens.

        Queries are cut to their first `max_length // 2` tokens first.
        """
        if not passages:
            return EncodedPairs([], [] if self._want_token_types else None, np.zeros(0, np.int64))
        short = self._truncate_queries(queries)
        enc = self._tokenizer(
            [short[q] for q in queries],
            list(passages),
            truncation="only_second",
            max_length=self._max_length,
            stride=self._overlap,
            return_overflowing_tokens=True,
            return_token_type_ids=self._want_token_types,
            return_attention_mask=False,
            padding=False,
        )
        owner = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
        token_types = enc["token_type_ids"] if self._want_token_types else None
        return EncodedPairs(enc["input_ids"], token_types, owner)

    def cut_texts(
        self,
        query: str,
        texts: Sequence[str],
        *,
        max_tokens_per_doc: int | None = None,
        max_chunks_per_doc: int | None = None,
    ) -> list[str]:
        """`texts` cut as Cohere's request options ask (see `plan`); unchanged when unset."""
        RerankOptions(
            max_tokens_per_doc=max_tokens_per_doc, max_chunks_per_doc=max_chunks_per_doc
        ).check_window_limits()
        limit = max_tokens_per_doc
        if max_chunks_per_doc is not None:
            short = self._truncate_queries([query])[query]
            query_tokens = len(self._tokenizer(short, add_special_tokens=False)["input_ids"])
            room = self._max_length - query_tokens - self._specials
            covered = room + (max_chunks_per_doc - 1) * (room - self._overlap)
            limit = covered if limit is None else min(limit, covered)
        return list(texts) if limit is None else self._cut_to_tokens(texts, limit)

    def _cut_to_tokens(self, texts: Sequence[str], limit: int) -> list[str]:
        """Each text cut after its first `limit` tokens (no special tokens counted)."""
        return cut_to_tokens(self._tokenizer, texts, limit)

    def _truncate_queries(self, queries: Sequence[str]) -> dict[str, str]:
        unique = list(dict.fromkeys(queries))
        return dict(zip(unique, self._cut_to_tokens(unique, self._max_query), strict=True))

    def _run(self, encoded: EncodedPairs) -> np.ndarray:
        n = len(encoded.input_ids)
        logits = np.zeros((n, self._num_labels), dtype=np.float32)
        lengths = np.fromiter((len(x) for x in encoded.input_ids), dtype=np.int64, count=n)
        for rows in pack_batches(lengths, self._batch_tokens, sort=self._sort):
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64) if encoded.token_type_ids else None
            for r, i in enumerate(rows.tolist()):
                ids[r, : lengths[i]] = encoded.input_ids[i]
                mask[r, : lengths[i]] = 1
                if types is not None and encoded.token_type_ids is not None:
                    types[r, : lengths[i]] = encoded.token_type_ids[i]
            logits[rows] = self._backend.run(ids, mask, types)
        return logits

    def _score(
        self, queries: Sequence[str], passages: Sequence[str]
    ) -> tuple[np.ndarray, list[int | None]]:
        n = len(passages)
        if n == 0:
            return np.zeros(0, dtype=np.float64), []
        encoded = self.encode(queries, passages)
        per_window = self._window_scores(self._run(encoded))
        return aggregate_windows(per_window, encoded.owner, n, self._aggregate)

    def _window_scores(self, logits: np.ndarray) -> np.ndarray:
        logits = logits.astype(np.float64)
        return logits[:, 0] if self._num_labels == 1 else logits[:, 1] - logits[:, 0]
