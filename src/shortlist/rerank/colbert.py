"""Late-interaction (ColBERT) reranking: MaxSim over query and document token embeddings.

`ColbertReranker` loads a ColBERT checkpoint in PyLate's format (a sentence-transformers
folder: `modules.json` listing a Transformer and one or more Dense projections, and
PyLate's settings in `config_sentence_transformers.json`) and scores a (query, document)
pair exactly as PyLate (lightonai/pylate, `pylate/models/colbert.py` and
`pylate/scores/colbert.py`) does, without depending on it:

Encoders
    - the text is stripped (and lower-cased when `sentence_bert_config.json` says
      `do_lower_case`), tokenized with the special tokens, and the marker token
      (`query_prefix`, default "[Q] "; `document_prefix`, default "[D] "; a token of
      the checkpoint's tokenizer) is inserted after the first token: `[CLS] [Q] ...`.
      An empty prefix means no marker.
    - Queries are cut to `query_length` tokens (marker included). With
      `do_query_expansion` (default) they are padded to exactly `query_length` with the
      tokenizer's mask token (else its EOS, else its pad token: PyLate's order); the
      expansion tokens are attended to only with `attend_to_expansion_tokens`, but
      always take part in scoring. Without expansion only the real tokens are used.
    - Documents are cut to `document_length` tokens (marker included) per window, and
      tokens whose id is one of the `skiplist_words` (default: ASCII punctuation) are
      dropped before scoring (they are still encoded).
    - Token embeddings are the transformer's last hidden states through every Dense
      module in order (`activation(x W^T + b)`, plus PyLate's optional residual), then
      L2-normalised per token.

Score
    MaxSim: for each query token, the highest dot product with any scored token of the
    document, summed over the query tokens (`colbert_scores_pairwise`). The raw score
    lies in [-n, n] for n query vectors; the calibrated score is the mean per-token
    maximum mapped to [0, 1]: `(raw / n + 1) / 2`.

    `pylate.rank.rerank` pads a query's candidates with zero vectors and does not mask
    them, so there a document shorter than its longest neighbour has its per-token
    maxima floored at 0, and its score depends on the other candidates. shortlist scores
    each pair on its own (a scoring unit's score never depends on the other units), which
    equals PyLate's pairwise score and equals `rank.rerank` whenever the maxima are
    positive, as they practically always are with trained checkpoints.

Long documents are never silently truncated
    PyLate keeps a document's first `document_length` tokens. Here a longer document is
    cut into overlapping windows of that size (consecutive windows share
    `window_stride` tokens, default `document_length // 4`), each window is scored, and
    the windows are aggregated like the cross-encoder's (`max`, `mean` or `first`;
    `first` gives PyLate's truncated score).

Scoring protocol
    `plan` tokenizes the query and the document windows (units: `LateInteractionPair`),
    `score_units` encodes each distinct query and document window once (windows sorted
    by length and packed into batches of at most `batch_tokens` padded tokens) and takes
    MaxSim per unit, `finish` aggregates windows, calibrates and ranks.

Stanford-format checkpoints (colbert-ir's `HF_ColBERT`, e.g. colbert-ir/colbertv2.0)
are read as PyLate reads them: the transformer and `linear.weight` from the folder's
weights, the settings from `artifact.metadata` (`query_token_id`, `doc_token_id`,
`query_maxlen`, `doc_maxlen`, `attend_to_mask_tokens`; markers default to
[unused0]/[unused1]), PyLate's defaults for the rest.
"""

from __future__ import annotations

import importlib
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    rank_windows,
)
from shortlist.runtime.models import (
    cut_to_tokens,
    pack_batches,
    require_fast_tokenizer,
    resolve_model_path,
)
from shortlist.types import Ranking
from shortlist.validate import check_candidates

# PyLate's defaults (pylate/models/colbert.py) for settings a checkpoint leaves out.
DEFAULT_QUERY_PREFIX = "[Q] "
DEFAULT_DOCUMENT_PREFIX = "[D] "
DEFAULT_QUERY_LENGTH = 32
DEFAULT_DOCUMENT_LENGTH = 180
DEFAULT_SKIPLIST = tuple(string.punctuation)


@dataclass(frozen=True, slots=True)
class ColbertSettings:
    """PyLate's encoding settings of one checkpoint (see the module docstring)."""

    query_prefix: str = DEFAULT_QUERY_PREFIX
    document_prefix: str = DEFAULT_DOCUMENT_PREFIX
    query_length: int = DEFAULT_QUERY_LENGTH
    document_length: int = DEFAULT_DOCUMENT_LENGTH
    do_query_expansion: bool = True
    attend_to_expansion_tokens: bool = False
    skiplist_words: tuple[str, ...] = DEFAULT_SKIPLIST
    do_lower_case: bool = False
    prompt: str = ""  # the default prompt, prepended to queries and documents alike


@dataclass(frozen=True, slots=True)
class QueryTokens:
    """A tokenized query: `ids` (marker and expansion included); the first `real` are
    the query's own tokens, the rest expansion tokens."""

    ids: tuple[int, ...]
    real: int


@dataclass(frozen=True, slots=True)
class LateInteractionPair:
    """One scoring unit: a tokenized query and one tokenized document window."""

    query: QueryTokens
    document: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """Plan context: how many query vectors take part in MaxSim (for calibration)."""

    query_vectors: int


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    return value


def _is_module(kind: str, name: str) -> bool:
    return str(kind).rsplit(".", 1)[-1] == name


@dataclass(frozen=True, slots=True)
class CheckpointLayout:
    """Where a ColBERT checkpoint keeps its parts.

    - `transformer`: the folder of the transformer and its tokenizer;
    - `dense`: the Dense module folders, in order (PyLate layout);
    - `stanford`: a Stanford-format (colbert-ir) checkpoint, whose projection is the
      `linear.weight` of the transformer's own weights file and whose settings are in
      `artifact.metadata`.
    """

    transformer: Path
    dense: tuple[Path, ...] = ()
    stanford: bool = False


def read_layout(folder: Path) -> CheckpointLayout:
    """The layout of the ColBERT checkpoint in `folder`.

    Raises `ModelLoadError` naming what is missing when `folder` is not one.
    """
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
        if (config.get("architectures") or [None])[0] == "HF_ColBERT":
            return CheckpointLayout(folder, stanford=True)
        raise ModelLoadError(
            f"{folder} is not a ColBERT checkpoint: no modules.json (a PyLate checkpoint "
            "lists a Transformer and a Dense projection there) and its config.json does not "
            "name the HF_ColBERT architecture; for a cross-encoder use cross-encoder:PATH"
        )
    try:
        entries = json.loads(modules_file.read_text(encoding="utf-8"))
        kinds = [(str(e["type"]), str(e.get("path", ""))) for e in entries]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"cannot read {modules_file}: {exc}") from exc
    transformers = [folder / p for k, p in kinds if _is_module(k, "Transformer")]
    dense = tuple(folder / p for k, p in kinds if _is_module(k, "Dense"))
    if len(transformers) != 1:
        raise ModelLoadError(
            f"{modules_file} lists {len(transformers)} Transformer modules; a ColBERT "
            "checkpoint has exactly one"
        )
    if not dense:
        raise ModelLoadError(
            f"{folder} is not a ColBERT checkpoint: modules.json lists no Dense projection "
            f"(modules: {', '.join(k for k, _ in kinds)}); for a sentence-transformers "
            "bi-encoder use bi-encoder:PATH"
        )
    return CheckpointLayout(transformers[0], dense)


def read_stanford_settings(folder: Path) -> ColbertSettings:
    """A Stanford-format checkpoint's settings from `artifact.metadata`, with PyLate's
    defaults for what it leaves out ([unused0]/[unused1] markers)."""
    path = folder / "artifact.metadata"
    meta = _read_json(path) if path.is_file() else {}

    def pick(key: str, default: Any) -> Any:
        value = meta.get(key)
        return default if value is None else value

    try:
        return ColbertSettings(
            query_prefix=str(pick("query_token_id", "[unused0]")),
            document_prefix=str(pick("doc_token_id", "[unused1]")),
            query_length=int(pick("query_maxlen", DEFAULT_QUERY_LENGTH)),
            document_length=int(pick("doc_maxlen", DEFAULT_DOCUMENT_LENGTH)),
            attend_to_expansion_tokens=bool(pick("attend_to_mask_tokens", False)),
        )
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: a ColBERT setting has the wrong type: {exc}") from exc


def read_settings(folder: Path, transformer: Path) -> ColbertSettings:
    """PyLate's settings from `config_sentence_transformers.json`, defaults elsewhere."""
    st_file = folder / "config_sentence_transformers.json"
    config = _read_json(st_file) if st_file.is_file() else {}
    bert_file = transformer / "sentence_bert_config.json"
    bert = _read_json(bert_file) if bert_file.is_file() else {}
    defaults = ColbertSettings()

    def pick(key: str, default: Any) -> Any:
        value = config.get(key)
        return default if value is None else value

    prompt = ""
    default_prompt = config.get("default_prompt_name")
    if default_prompt is not None:
        prompts = config.get("prompts") or {}
        if default_prompt not in prompts:
            raise ModelLoadError(
                f"{st_file}: default_prompt_name {default_prompt!r} is not in its prompts"
            )
        prompt = str(prompts[default_prompt])
    expansion = bool(pick("do_query_expansion", defaults.do_query_expansion))
    try:
        return ColbertSettings(
            query_prefix=str(pick("query_prefix", defaults.query_prefix)),
            document_prefix=str(pick("document_prefix", defaults.document_prefix)),
            query_length=int(pick("query_length", defaults.query_length)),
            document_length=int(pick("document_length", defaults.document_length)),
            do_query_expansion=expansion,
            # Without expansion there is nothing to attend to (PyLate forces False).
            attend_to_expansion_tokens=expansion
            and bool(pick("attend_to_expansion_tokens", defaults.attend_to_expansion_tokens)),
            skiplist_words=tuple(str(w) for w in pick("skiplist_words", defaults.skiplist_words)),
            do_lower_case=bool(bert.get("do_lower_case", False)),
            prompt=prompt,
        )
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{st_file}: a ColBERT setting has the wrong type: {exc}") from exc


def _activation(name: str) -> Any:
    """A torch activation module from its dotted class name (torch's own only, as PyLate
    trusts only those without `trust_remote_code`)."""
    module_name, _, cls = name.rpartition(".")
    if not module_name.startswith("torch.") and module_name != "torch":
        raise ModelLoadError(
            f"Dense activation {name!r} is not a torch module; only torch's own "
            "activations (e.g. torch.nn.modules.linear.Identity) are loaded"
        )
    try:
        return getattr(importlib.import_module(module_name), cls)()
    except (ImportError, AttributeError, TypeError) as exc:
        raise ModelLoadError(f"unknown Dense activation {name!r}: {exc}") from exc


def _load_weights(folder: Path) -> dict[str, Any]:
    import torch

    safetensors = folder / "model.safetensors"
    if safetensors.is_file():
        from safetensors.torch import load_file

        return dict(load_file(str(safetensors)))
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        return dict(torch.load(str(binary), map_location="cpu", weights_only=True))
    raise ModelLoadError(f"{folder} holds no model.safetensors or pytorch_model.bin")


def load_stanford_projection(folder: Path, device: str = "cpu") -> Any:
    """The `linear.weight` (no bias) of a Stanford-format checkpoint as a torch module."""
    import torch

    weights = _load_weights(folder)
    if "linear.weight" not in weights:
        raise ModelLoadError(
            f"{folder}: an HF_ColBERT checkpoint keeps its projection as linear.weight in "
            "its weights file, and this one has none"
        )
    weight = weights["linear.weight"]
    linear = torch.nn.Linear(int(weight.shape[1]), int(weight.shape[0]), bias=False)
    linear.load_state_dict({"weight": weight})
    return linear.to(device)


def load_dense(folder: Path, device: str = "cpu") -> Any:
    """One Dense module as a torch callable on `device`: `activation(linear(x))`
    (+ residual)."""
    import torch

    config = _read_json(folder / "config.json")
    weights = _load_weights(folder)
    try:
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
        bias = bool(config.get("bias", True))
        residual = bool(config.get("use_residual", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{folder}/config.json is not a Dense config: {exc}") from exc
    if "activation_function" not in config:
        # PyLate and sentence-transformers both refuse a Dense config without one.
        raise ModelLoadError(f"{folder}/config.json names no activation_function")
    activation = _activation(str(config["activation_function"])).to(device)
    linear = torch.nn.Linear(n_in, n_out, bias=bias)
    state = {k: v for k, v in weights.items() if k.startswith("linear.")}
    try:
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
    except RuntimeError as exc:
        raise ModelLoadError(f"{folder}: Dense weights do not fit its config: {exc}") from exc
    projection: Any = None
    if residual and n_in != n_out:
        if "residual.weight" not in weights:
            raise ModelLoadError(f"{folder}: use_residual is set but residual.weight is missing")
        projection = torch.nn.Linear(n_in, n_out, bias=False)
        projection.load_state_dict({"weight": weights["residual.weight"]})
        projection = projection.to(device)
    linear = linear.to(device)

    def forward(x: Any) -> Any:
        y = activation(linear(x))
        if residual:
            y = y + (projection(x) if projection is not None else x)
        return y

    return forward


class ColbertReranker:
    """A `Reranker` and `PairScorer` over a PyLate-format ColBERT checkpoint.

    - `model`: Hugging Face hub id (resolved through the HF cache) or local folder;
    - `query_length`, `document_length`: override the checkpoint's (marker included);
    - `batch_tokens`: bound on rows x padded length of one encoder call (>= the longest
      window); default `CPU_BATCH_TOKENS` on CPU, `GPU_BATCH_TOKENS` on an accelerator;
    - `aggregate`, `window_stride`: long-document windows (module docstring);
    - `device`: "cpu" (default) or e.g. "cuda";
    - `num_threads`: calls the process-wide `torch.set_num_threads`.

    Raises `ModelLoadError` when the folder is not a ColBERT checkpoint (names what is
    missing), `InvalidInputError` for bad options.
    """

    def __init__(
        self,
        model: str,
        *,
        query_length: int | None = None,
        document_length: int | None = None,
        batch_tokens: int | None = None,
        aggregate: str = "max",
        window_stride: int | None = None,
        device: str | None = None,
        name: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        check_model_options(aggregate, num_threads)
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_model_path(model)
        layout = read_layout(folder)
        transformer = layout.transformer
        if layout.stanford:
            settings = read_stanford_settings(folder)
        else:
            settings = read_settings(folder, transformer)
        if query_length is not None:
            settings = replace(settings, query_length=int(query_length))
        if document_length is not None:
            settings = replace(settings, document_length=int(document_length))
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(str(transformer))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer from {transformer}: {exc}") from exc
        require_fast_tokenizer(tokenizer, model)
        self._query_prefix_id = self._marker_id(tokenizer, settings.query_prefix, model)
        self._document_prefix_id = self._marker_id(tokenizer, settings.document_prefix, model)
        self._query_max = settings.query_length - (self._query_prefix_id is not None)
        self._document_max = settings.document_length - (self._document_prefix_id is not None)
        # Room for [CLS], [SEP] and at least one token of text.
        specials = int(tokenizer.num_special_tokens_to_add(pair=False))
        for label, room in (("query_length", self._query_max), ("document_length",
                                                                 self._document_max)):
            if room < specials + 1:
                raise InvalidInputError(
                    f"{label} leaves no room for text after the special and marker tokens"
                )
        text_room = self._document_max - specials
        overlap = text_room // 4 if window_stride is None else int(window_stride)
        if not 0 <= overlap < text_room:
            raise InvalidInputError(
                f"window_stride must be in [0, {text_room}) for document_length "
                f"{settings.document_length}"
            )
        expansion_id = next(
            (t for t in (tokenizer.mask_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
             if t is not None),
            None,
        )
        if expansion_id is None:
            raise ModelLoadError(
                f"{model}: its tokenizer has no mask, EOS or pad token to expand queries with"
            )
        longest = max(settings.document_length, settings.query_length)
        if batch_tokens is None:
            batch_tokens = max(default_batch_tokens(device), longest)
        if batch_tokens < longest:
            raise InvalidInputError(
                f"batch_tokens ({batch_tokens}) must be >= the longest input ({longest})"
            )
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            encoder = AutoModel.from_pretrained(str(transformer), dtype="float32")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the transformer from {transformer}: {exc}") from exc
        self._device = device or "cpu"
        self._encoder = encoder.eval().to(self._device)
        self._dense = (
            [load_stanford_projection(folder, self._device)]
            if layout.stanford
            else [load_dense(path, self._device) for path in layout.dense]
        )
        self._wants_token_types = "token_type_ids" in tokenizer.model_input_names
        self._settings = settings
        self._tokenizer = tokenizer
        self._expansion_id = int(expansion_id)
        # PyLate maps each word with convert_tokens_to_ids: a word outside the
        # vocabulary maps to the unknown token, which is then skipped too.
        self._skip_ids = frozenset(
            int(tokenizer.convert_tokens_to_ids(word)) for word in settings.skiplist_words
        )
        self._overlap = overlap
        self._batch_tokens = int(batch_tokens)
        self._aggregate = aggregate
        self._name = name or f"colbert:{model}"

    @staticmethod
    def _marker_id(tokenizer: Any, prefix: str, model: str) -> int | None:
        if not prefix:
            return None
        token_id = tokenizer.convert_tokens_to_ids(prefix)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ModelLoadError(
                f"{model}: marker token {prefix!r} is not in the tokenizer's vocabulary; "
                "a PyLate checkpoint saves it there (load and save the model with PyLate)"
            )
        return int(token_id)

    @property
    def name(self) -> str:
        return self._name

    @property
    def settings(self) -> ColbertSettings:
        return self._settings

    @property
    def calibration(self) -> str:
        """Raw MaxSim divided by the query's vector count is a mean cosine: `cosine`."""
        return "cosine"

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
        """Step 1: tokenize the query once and each document into windows.

        `max_tokens_per_doc` keeps a document's first N tokens; `max_chunks_per_doc` its
        first N windows. Both must be >= 1.
        """
        texts = [candidate_text(c) for c in documents]
        check_candidates(query, texts)
        options.check_window_limits()
        encoded_query = self.encode_query(query)
        windows, owner = self.encode_documents(texts, max_tokens=options.max_tokens_per_doc)
        if options.max_chunks_per_doc is not None:
            keep = _first_windows(owner, options.max_chunks_per_doc)
            windows = [w for w, k in zip(windows, keep, strict=True) if k]
            owner = [o for o, k in zip(owner, keep, strict=True) if k]
        units = tuple(LateInteractionPair(encoded_query, w) for w in windows)
        return ScoringPlan(
            query=query,
            n_documents=len(texts),
            units=units,
            tokens=tuple(len(w) for w in windows),
            owner=tuple(owner),
            context=_Plan(self._query_vectors(encoded_query)),
        )

    def score_units(self, units: Sequence[LateInteractionPair]) -> np.ndarray:
        """Step 2: the MaxSim score of each unit.

        Each distinct query and each distinct document window is encoded once, whatever
        requests the units came from; a unit's score depends only on its own pair.
        """
        if not units:
            return np.zeros(0, dtype=np.float64)
        queries = list(dict.fromkeys(u.query for u in units))
        documents = list(dict.fromkeys(u.document for u in units))
        query_vectors = dict(zip(queries, self.query_embeddings(queries), strict=True))
        document_vectors = dict(
            zip(documents, self.document_embeddings(documents), strict=True)
        )
        return np.asarray(
            [maxsim(query_vectors[u.query], document_vectors[u.document]) for u in units],
            dtype=np.float64,
        )

    def finish(
        self,
        plan: ScoringPlan,
        scores: np.ndarray,
        documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking:
        """Step 3: windows aggregated (`aggregate`), calibrated, ranked."""
        n = plan.context.query_vectors if isinstance(plan.context, _Plan) else 1
        return rank_windows(
            plan, scores, documents, top_n, self._aggregate, lambda raw: self.calibrate(raw, n)
        )

    @staticmethod
    def calibrate(raw: np.ndarray, query_vectors: int) -> np.ndarray:
        """MaxSim of `query_vectors` query tokens -> [0, 1] (mean cosine, mapped)."""
        return calibrate(np.asarray(raw, dtype=np.float64) / max(query_vectors, 1), "cosine")

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw MaxSim scores, one float64 per (query, passage) pair, in input order.

        A passage split into windows gets its windows aggregated (`aggregate`).
        """
        units: list[LateInteractionPair] = []
        owners: list[int] = []
        query_tokens: dict[str, QueryTokens] = {}
        for i, (query, passage) in enumerate(pairs):
            check_candidates(query, [passage])
            encoded = query_tokens.get(query) or self.encode_query(query)
            query_tokens[query] = encoded
            windows, _ = self.encode_documents([passage])
            units.extend(LateInteractionPair(encoded, w) for w in windows)
            owners.extend([i] * len(windows))
        scores = self.score_units(units)
        raw, _ = aggregate_windows(
            scores, np.asarray(owners, dtype=np.int64), len(pairs), self._aggregate
        )
        return raw

    # ---- encoders ------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        # sentence-transformers' Transformer.tokenize: prompt, strip, lower-case.
        text = (self._settings.prompt + text).strip()
        return text.lower() if self._settings.do_lower_case else text

    def _query_vectors(self, query: QueryTokens) -> int:
        return len(query.ids) if self._settings.do_query_expansion else query.real

    def encode_query(self, query: str) -> QueryTokens:
        """The query's token ids: cut to `query_length`, marker inserted, expanded."""
        encoded: list[int] = self._tokenizer(
            self._prepare(query), truncation=True, max_length=self._query_max
        )["input_ids"]
        ids = _insert_marker(list(encoded), self._query_prefix_id)
        real = len(ids)
        if self._settings.do_query_expansion:
            ids += [self._expansion_id] * (self._settings.query_length - len(ids))
        return QueryTokens(tuple(ids), real)

    def encode_documents(
        self, texts: Sequence[str], *, max_tokens: int | None = None
    ) -> tuple[list[tuple[int, ...]], list[int]]:
        """Each text's windows of at most `document_length` token ids (marker included),
        and the text each window belongs to. `max_tokens` keeps a text's first N tokens."""
        if not texts:
            return [], []
        prepared = [self._prepare(t) for t in texts]
        if max_tokens is not None:
            prepared = cut_to_tokens(self._tokenizer, prepared, max_tokens)
        enc = self._tokenizer(
            prepared,
            truncation=True,
            max_length=self._document_max,
            stride=self._overlap,
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        windows = [tuple(_insert_marker(list(ids), self._document_prefix_id))
                   for ids in enc["input_ids"]]
        return windows, [int(o) for o in enc["overflow_to_sample_mapping"]]

    def query_embeddings(self, queries: Sequence[QueryTokens]) -> list[np.ndarray]:
        """L2-normalised query token vectors, (tokens, dim) float32 per query."""
        attend = self._settings.attend_to_expansion_tokens
        rows = [list(q.ids) for q in queries]
        masks = [[1] * (len(q.ids) if attend else q.real) for q in queries]
        vectors = self._embed(rows, masks)
        return [
            v if self._settings.do_query_expansion else v[: q.real]
            for v, q in zip(vectors, queries, strict=True)
        ]

    def document_embeddings(self, documents: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
        """L2-normalised vectors of each window's scored tokens (skiplist dropped)."""
        vectors = self._embed([list(d) for d in documents], [[1] * len(d) for d in documents])
        skip = self._skip_ids
        return [
            v[np.fromiter((t not in skip for t in d), dtype=bool, count=len(d))]
            for v, d in zip(vectors, documents, strict=True)
        ]

    def _embed(self, rows: list[list[int]], masks: list[list[int]]) -> list[np.ndarray]:
        """Encoder + Dense chain + L2 norm per token, in length-sorted token-budget batches.

        `masks[i]` is row i's attention mask prefix (1s); the rest of the row is attended
        to with 0. Returns one (len(row), dim) array per row, in input order.
        """
        import torch

        out: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(rows)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        for batch in pack_batches(lengths, self._batch_tokens):
            width = int(lengths[batch].max())
            ids = np.full((len(batch), width), self._expansion_id, dtype=np.int64)
            attention = np.zeros((len(batch), width), dtype=np.int64)
            for r, i in enumerate(batch.tolist()):
                ids[r, : lengths[i]] = rows[i]
                attention[r, : len(masks[i])] = 1
            feed = {
                "input_ids": torch.from_numpy(ids).to(self._device),
                "attention_mask": torch.from_numpy(attention).to(self._device),
            }
            if self._wants_token_types:
                feed["token_type_ids"] = torch.zeros_like(feed["input_ids"])
            with torch.inference_mode():
                hidden = self._encoder(**feed).last_hidden_state
                for dense in self._dense:
                    hidden = dense(hidden)
                hidden = torch.nn.functional.normalize(hidden.float(), p=2, dim=-1)
            array = hidden.cpu().numpy()
            for r, i in enumerate(batch.tolist()):
                out[i] = np.ascontiguousarray(array[r, : lengths[i]])
        return out


def maxsim(query: np.ndarray, document: np.ndarray) -> float:
    """Sum over query vectors of the best dot product with any document vector.

    0 for a document with no scored token. Khattab & Zaharia, "ColBERT" (SIGIR 2020), eq. 3.
    """
    if len(document) == 0 or len(query) == 0:
        return 0.0
    return float((query @ document.T).max(axis=1).sum(dtype=np.float64))


def _insert_marker(ids: list[int], marker: int | None) -> list[int]:
    return ids if marker is None else [*ids[:1], marker, *ids[1:]]


def _first_windows(owner: Sequence[int], keep: int) -> list[bool]:
    seen: dict[int, int] = {}
    out = []
    for o in owner:
        seen[o] = seen.get(o, 0) + 1
        out.append(seen[o] <= keep)
    return out

