"""LLM-based pointwise reranking: a causal language model asked "does this document
answer this query?", scored by the logits of its answer tokens at the last position.

`LLMReranker` loads a `*ForCausalLM` model (Hugging Face hub id or local folder) and
scores each (query, document) pair with the recipe of its family: the exact prompt,
the answer tokens and the score rule of the family's model card. Recipes live in
`RECIPES`; the family of a model is looked up from its config's architecture in
`ARCHITECTURES` (never from its name), and `template=NAME` (a key of `RECIPES`) or
`template=/path/recipe.json` (a `Recipe`'s fields as JSON) overrides the lookup.

Scores
    `raw_score` is the recipe's score rule: `logit(true) - logit(false)` (the log-odds,
    Qwen3-Reranker, mxbai-rerank-v2) or `logit(true)` alone (bge-reranker-v2-gemma,
    zerank). `calibrated = sigmoid(logit_scale * raw)`: P(yes) for log-odds recipes,
    FlagEmbedding's `normalize=True` for bge, zerank's `sigmoid(logit / 5)`.

Prompts are token-exact
    A recipe is a sequence of segments, each tokenized on its own and concatenated, as
    the model cards do (e.g. Qwen3-Reranker tokenizes its system prefix, the pair and its
    suffix separately). Segments before the one holding `{document}` form the *prefix*
    (instruction and query): it is the same for every document of a query.

Long documents are never silently truncated
    A window is `prefix + document segment + tail` of at most `max_length` tokens. A
    document whose segment does not fit is cut into overlapping windows (consecutive
    windows share `window_stride` tokens, default a quarter of the room), each window
    is scored, and the document's score aggregates them (`max`, `mean` or `first`), as
    for the cross-encoder. Only the query is ever cut: to half of `max_length`.

Speed
    - Batches hold windows of similar length, sorted and cut by `batch_tokens`.
    - Prefix reuse (`prefix_reuse=True`): the prefix of a query is run once, and its
      key/value cache is shared by every window of that query, so the model only reads
      each document's own tokens. Scores equal those of full sequences (tests check it).
    - Padding goes at the end of each row: a causal model never attends to later
      positions, so pads change no real token's output and need no attention mask or
      shifted positions; the score is read at each row's last real token.
    - Only the two answer-token rows of the output layer are applied, to one position
      per row, instead of the full vocabulary at every position.
    - `dtype`: float32 (default on CPU), bfloat16 (default on a GPU that supports it;
      worth it on CPUs with AVX512-BF16/AMX), or int8 (CPU: the MLP blocks' Linear
      layers as dynamic int8, the one int8 variant that kept Spearman >= 0.98 against
      float32 in benchmarks/llm_rerank_latency.py; see `_quantize_mlps`).
"""

from __future__ import annotations

import json
import math
import string
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError, ModelLoadError, SpecError
from shortlist.rerank.base import (
    NO_OPTIONS,
    Candidate,
    RerankOptions,
    ScoringPlan,
    candidate_text,
    rerank_planned,
    sigmoid,
)
from shortlist.rerank.windows import (
    aggregate_windows,
    check_model_options,
    distinct_units,
    rank_windows,
)
from shortlist.runtime.models import (
    cut_to_tokens,
    load_config_and_tokenizer,
    on_cpu,
    pack_batches,
    require_fast_tokenizer,
    resolve_model_path,
)
from shortlist.types import Ranking
from shortlist.validate import check_candidates

# benchmarks/llm_rerank_latency.py (Qwen3 shape, 4 layers, hidden 512, 50 Lee passages,
# one thread, CPU time): 2048 padded tokens per batch beat 512, 1024 and 4096 by 4-10%.
CPU_BATCH_TOKENS = 2048
GPU_BATCH_TOKENS = 32768
DTYPES = ("auto", "float32", "bfloat16", "int8")
"""`dtype` choices; `auto` is bfloat16 on a GPU that supports it, else float32."""

_FIELDS = frozenset({"query", "instruction", "document"})


@dataclass(frozen=True, slots=True)
class Recipe:
    """How one family of LLM rerankers reads a pair and turns logits into a score.

    - `segments`: prompt pieces, each tokenized alone (no special tokens added) and
      concatenated; placeholders `{query}`, `{instruction}`, `{document}` (format
      syntax: literal braces are written `{{`/`}}`); exactly one segment holds
      `{document}`;
    - `true_token`/`false_token`: the answer tokens; score = logit(true) - logit(false),
      or logit(true) when `false_token` is None;
    - `token_rule`: how a token string becomes an id: `vocab` (the token as spelled in
      the vocabulary, `convert_tokens_to_ids`) or `encode` (the first id of the text
      tokenized without special tokens), as the family's card does it;
    - `default_instruction`: used when the request gives none (None: no instruction);
      `instruction_format` renders an instruction into `{instruction}`;
      `takes_instruction=False` rejects one;
    - `bos`: prepend the tokenizer's BOS token; `strip`: strip query and document;
    - `logit_scale`: calibrated = sigmoid(logit_scale * raw);
    - `max_length`: the card's window length (capped by the model's context).
    """

    name: str
    source: str
    segments: tuple[str, ...]
    true_token: str
    false_token: str | None = None
    token_rule: str = "vocab"
    default_instruction: str | None = None
    instruction_format: str = "{instruction}"
    takes_instruction: bool = True
    bos: bool = False
    strip: bool = False
    logit_scale: float = 1.0
    max_length: int = 8192

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.segments))
        with_document = [i for i, s in enumerate(self.segments) if "document" in _names(s)]
        if len(with_document) != 1:
            raise SpecError(
                f"recipe {self.name!r} needs exactly one segment with {{document}}, "
                f"found {len(with_document)}"
            )
        for segment in (*self.segments, self.instruction_format):
            unknown = _names(segment) - _FIELDS
            if unknown:
                raise SpecError(
                    f"recipe {self.name!r} has unknown placeholder(s) "
                    f"{', '.join(sorted(unknown))}; use {{query}}, {{instruction}}, {{document}}"
                )
        if self.token_rule not in ("vocab", "encode"):
            raise SpecError(f"recipe {self.name!r}: token_rule must be 'vocab' or 'encode'")
        if self.max_length < 16 or not math.isfinite(self.logit_scale):
            raise SpecError(f"recipe {self.name!r}: max_length >= 16 and a finite logit_scale")

    @property
    def document_segment(self) -> int:
        """The index of the segment holding `{document}`."""
        return next(i for i, s in enumerate(self.segments) if "document" in _names(s))

    def instruction_text(self, instruction: str | None) -> str:
        """What `{instruction}` renders to: the given or default instruction, formatted."""
        text = instruction or self.default_instruction
        return self.instruction_format.format(instruction=text) if text else ""

    def chat_template(self, instruction: str | None = None, bos_token: str = "") -> str:
        """A Jinja chat template rendering this recipe from sentence-transformers' pair
        messages (roles `query` and `document`), to run the same prompt through its
        `CrossEncoder` (save it as `chat_template.jinja` in the model folder). There the
        prompt is tokenized as one string, so tokens may differ from the recipe's where a
        BPE merges across a segment boundary (punctuation ending a text before a newline)."""
        pick = "(messages | selectattr('role', 'equalto', '{}') | first).content"
        values = {"instruction": self.instruction_text(instruction)}
        parts = [f"{{{{ {json.dumps(bos_token)} }}}}"] if self.bos and bos_token else []
        for segment in self.segments:
            for literal, name, _, _ in string.Formatter().parse(segment):
                if literal:
                    parts.append(f"{{{{ {json.dumps(literal)} }}}}")
                if name in ("query", "document"):
                    text = pick.format(name)
                    parts.append(f"{{{{ {text} | trim }}}}" if self.strip else f"{{{{ {text} }}}}")
                elif name is not None:
                    parts.append(f"{{{{ {json.dumps(values[name])} }}}}")
        return "".join(parts)

    @classmethod
    def from_json(cls, path: str | Path) -> Recipe:
        """A recipe from a JSON object of this class's fields; `SpecError` if malformed."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read recipe file {path}: {exc}") from exc
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known or "segments" not in data:
            raise SpecError(
                f"recipe file {path} must be a JSON object with 'segments', 'true_token' "
                f"and optionally: {', '.join(sorted(known))}"
            )
        data.setdefault("name", Path(path).stem)
        data.setdefault("source", str(path))
        try:
            return cls(**data)
        except TypeError as exc:
            raise SpecError(f"recipe file {path}: {exc}") from exc


def _names(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise SpecError(f"bad template segment {template!r}: {exc}") from exc


_QWEN_IM = "<|im_start|>{role}\n"

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="qwen3-reranker",
            source="https://huggingface.co/Qwen/Qwen3-Reranker-0.6B (model card, transformers)",
            segments=(
                _QWEN_IM.format(role="system")
                + "Judge whether the Document meets the requirements based on the Query and "
                'the Instruct provided. Note that the answer can only be "yes" or "no".'
                "<|im_end|>\n" + _QWEN_IM.format(role="user"),
                "<Instruct>: {instruction}\n<Query>: {query}\n",
                "<Document>: {document}",
                "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
            ),
            true_token="yes",
            false_token="no",
            default_instruction=(
                "Given a web search query, retrieve relevant passages that answer the query"
            ),
            max_length=8192,
        ),
        Recipe(
            name="bge-reranker-v2-gemma",
            source="https://huggingface.co/BAAI/bge-reranker-v2-gemma (model card, get_inputs)",
            segments=("A: {query}", "\n", "B: {document}", "\n", "{instruction}"),
            true_token="Yes",
            token_rule="encode",
            default_instruction=(
                "Given a query A and a passage B, determine whether the passage contains an "
                "answer to the query by providing a prediction of either 'Yes' or 'No'."
            ),
            bos=True,
            max_length=1024,
        ),
        Recipe(
            name="mxbai-rerank-v2",
            source="https://github.com/mixedbread-ai/mxbai-rerank (mxbai_rerank_v2.py)",
            segments=(
                _QWEN_IM.format(role="system")
                + "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                "<|im_end|>\n" + _QWEN_IM.format(role="user"),
                "{instruction}query: {query}",
                "\n",
                "document: {document}",
                "\n",
                "You are a search relevance expert who evaluates how well documents match "
                "search queries. For each query-document pair, carefully analyze the "
                "semantic relationship between them, then provide your binary relevance "
                "judgment (0 for not relevant, 1 for relevant).\nRelevance:",
                "<|im_end|>\n<|im_start|>assistant\n",
            ),
            true_token="1",
            false_token="0",
            token_rule="encode",
            instruction_format="instruction: {instruction}\n",
            max_length=8192,
        ),
        Recipe(
            name="zerank",
            source="https://huggingface.co/zeroentropy/zerank-1 (modeling_zeranker.py)",
            segments=(
                "<|im_start|>system\n{query}<|im_end|>\n<|im_start|>user\n",
                "{document}",
                "<|im_end|>\n<|im_start|>assistant\n",
            ),
            true_token="Yes",
            token_rule="encode",
            takes_instruction=False,
            strip=True,
            logit_scale=0.2,
            max_length=4096,
        ),
    )
}
"""Family name -> recipe, each from the source it names."""

ARCHITECTURES: dict[str, str] = {
    "Qwen3ForCausalLM": "qwen3-reranker",
    "Qwen2ForCausalLM": "mxbai-rerank-v2",
    "GemmaForCausalLM": "bge-reranker-v2-gemma",
}
"""A config architecture -> the recipe used when no `template` is given. Other families
of the same architecture (zerank is a Qwen3ForCausalLM) are chosen with `template=`."""


def resolve_recipe(template: str | None, architecture: str, model: str) -> Recipe:
    """The recipe named by `template` (a `RECIPES` key or a JSON file), else the one
    registered for `architecture`; `SpecError`/`ModelLoadError` naming the choices."""
    if template is not None:
        if template in RECIPES:
            return RECIPES[template]
        if template.endswith(".json"):
            return Recipe.from_json(template)
        raise SpecError(
            f"unknown template {template!r}; choose one of: {', '.join(RECIPES)}, "
            "or give a recipe.json path"
        )
    name = ARCHITECTURES.get(architecture)
    if name is None:
        registered = ", ".join(f"{a} ({n})" for a, n in ARCHITECTURES.items())
        raise ModelLoadError(
            f"{model}: no reranking template is registered for architecture {architecture}; "
            f"registered: {registered}. Pick one with ?template=NAME "
            f"({', '.join(RECIPES)}) or describe the model's prompt in a recipe.json "
            "and pass ?template=/path/recipe.json"
        )
    return RECIPES[name]


@dataclass(frozen=True, slots=True)
class LLMUnit:
    """One scoring unit: a window's token ids, split where its query prefix ends."""

    prefix: tuple[int, ...]
    rest: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Query:
    prefix: tuple[int, ...]
    tail: tuple[int, ...]
    fields: dict[str, str]


class LLMReranker:
    """A `Reranker` and `PairScorer` over a causal-LM reranker (see the module docstring).

    - `model`: Hugging Face hub id or local folder of a `*ForCausalLM` model;
    - `template`: a `RECIPES` key or a recipe.json path (default: by architecture);
    - `instruction`: the query instruction (default: the recipe's);
    - `max_length`: tokens per window (default: the recipe's, capped by the context);
    - `batch_tokens`: token budget per batch; `aggregate`, `window_stride`: as for
      `CrossEncoderReranker`;
    - `dtype`: one of `DTYPES`; `device`: "cpu" (default) or e.g. "cuda";
    - `prefix_reuse`: share each query's prefix key/value cache across its windows;
    - `num_threads`: calls the process-wide `torch.set_num_threads`.

    Raises `ModelLoadError` when the model is not a causal LM, has no registered
    template, or its tokenizer lacks the answer tokens; `InvalidInputError` for bad
    options, e.g. a `max_length` beyond the model's context.
    """

    def __init__(
        self,
        model: str,
        *,
        template: str | None = None,
        instruction: str | None = None,
        max_length: int | None = None,
        batch_tokens: int | None = None,
        aggregate: str = "max",
        window_stride: int | None = None,
        dtype: str = "auto",
        device: str | None = None,
        prefix_reuse: bool = True,
        num_threads: int | None = None,
        name: str | None = None,
    ) -> None:
        check_model_options(aggregate, num_threads)
        if dtype not in DTYPES:
            raise InvalidInputError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        import torch

        path = resolve_model_path(model)
        config, tokenizer = load_config_and_tokenizer(path)
        architectures = list(getattr(config, "architectures", None) or [])
        causal = [a for a in architectures if a.endswith("ForCausalLM")]
        if not causal:
            raise ModelLoadError(
                f"{model} is not a causal language model (architectures: "
                f"{', '.join(architectures) or 'none'}); load a sequence-classification "
                f"reranker as cross-encoder:{model}"
            )
        require_fast_tokenizer(tokenizer, model)
        self._recipe = resolve_recipe(template, causal[0], model)
        if instruction is not None and not self._recipe.takes_instruction:
            raise InvalidInputError(
                f"the {self._recipe.name} template takes no instruction; drop ?instruction="
            )
        self._instruction = instruction
        self._tokenizer = tokenizer
        self._true_id, self._false_id = self._answer_ids(model)
        context = _context_length(config)
        if max_length is not None and context is not None and max_length > context:
            raise InvalidInputError(
                f"max_length {max_length} is larger than the context of {model} "
                f"({context} tokens, max_position_embeddings); use max_length<={context}"
            )
        limits = [self._recipe.max_length, context]
        self._max_length = int(max_length or min(x for x in limits if x is not None))
        if batch_tokens is None:
            batch_tokens = CPU_BATCH_TOKENS if on_cpu(device) else GPU_BATCH_TOKENS
        if batch_tokens < 1:
            raise InvalidInputError("batch_tokens must be >= 1")
        self._batch_tokens = int(batch_tokens)
        self._stride = window_stride
        self._aggregate = aggregate
        self._prefix_reuse = prefix_reuse
        self._device = device or "cpu"
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self._dtype = _resolve_dtype(dtype, self._device)
        if self._dtype == "int8" and not self._device.startswith("cpu"):
            raise InvalidInputError("dtype=int8 runs on CPU only; use device=cpu")
        if self._recipe.bos and tokenizer.bos_token_id is None:
            raise ModelLoadError(f"{model}: the {self._recipe.name} template needs a BOS token")
        self._bos = [int(tokenizer.bos_token_id)] if self._recipe.bos else []
        self._load_model(path, config)
        self._name = name or f"llm-reranker:{model}"

    # ---- loading ---------------------------------------------------------------------
    def _answer_ids(self, model: str) -> tuple[int, int | None]:
        def token_id(token: str) -> int:
            found: int | None = None
            if self._recipe.token_rule == "encode":
                ids: list[int] = list(self._tokenizer(token, add_special_tokens=False)["input_ids"])
                found = int(ids[0]) if ids else None
            else:
                got = self._tokenizer.convert_tokens_to_ids(token)
                unknown = got == self._tokenizer.unk_token_id and token != self._tokenizer.unk_token
                found = got if isinstance(got, int) and not unknown else None
            if found is None:
                raise ModelLoadError(
                    f"{model}: the tokenizer has no {token!r} token, which the "
                    f"{self._recipe.name} template scores; pick another ?template="
                )
            return found

        false = self._recipe.false_token
        return token_id(self._recipe.true_token), token_id(false) if false is not None else None

    def _load_model(self, path: Path, config: Any) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        load_dtype = torch.float32 if self._dtype == "int8" else getattr(torch, self._dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=load_dtype)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load a causal language model from {path}: {exc}") from exc
        model = model.eval()
        output = model.get_output_embeddings()
        rows = [self._true_id] + ([self._false_id] if self._false_id is not None else [])
        with torch.inference_mode():
            self._head = output.weight[rows].detach().clone()
            bias = getattr(output, "bias", None)
            self._head_bias = bias[rows].detach().clone() if bias is not None else None
        self._softcap = getattr(config, "final_logit_softcapping", None)
        if self._dtype == "int8":
            _quantize_mlps(model, path)
        self._model = model.to(self._device)
        self._decoder = self._model.get_decoder()
        self._head = self._head.to(self._device)
        if self._head_bias is not None:
            self._head_bias = self._head_bias.to(self._device)
        self._config = config

    # ---- properties ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def recipe(self) -> Recipe:
        return self._recipe

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def answer_token_ids(self) -> tuple[int, int | None]:
        return self._true_id, self._false_id

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores -> [0, 1]: sigmoid(logit_scale * raw)."""
        return sigmoid(np.asarray(raw, dtype=np.float64) * self._recipe.logit_scale)

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        """Score every candidate against `query`; best first, ties by input position."""
        return rerank_planned(self, query, documents, top_n)

    # ---- the scoring protocol (shortlist.rerank.base.PlannedReranker) ---------------
    @property
    def supported_options(self) -> frozenset[str]:
        return frozenset({"max_tokens_per_doc", "max_chunks_per_doc"})

    def plan(
        self, query: str, documents: Sequence[Candidate], options: RerankOptions = NO_OPTIONS
    ) -> ScoringPlan:
        """Step 1: render the query's prefix once, each document into its windows."""
        texts = [candidate_text(c) for c in documents]
        check_candidates(query, texts)
        options.check_window_limits()
        units: list[LLMUnit] = []
        owner: list[int] = []
        if texts:
            rendered = self._render_query(query)
            for i, text in enumerate(texts):
                windows = self._windows(rendered, text, options)
                units.extend(windows)
                owner.extend([i] * len(windows))
        return ScoringPlan(
            query=query,
            n_documents=len(texts),
            units=tuple(units),
            tokens=tuple(len(u.prefix) + len(u.rest) for u in units),
            owner=tuple(owner),
        )

    def score_units(self, units: Sequence[LLMUnit]) -> np.ndarray:
        """Step 2: the raw score of each window. Identical windows are run once; windows
        sharing a prefix share its key/value cache (with `prefix_reuse`)."""
        if not units:
            return np.zeros(0, dtype=np.float64)
        distinct, inverse = distinct_units(units, lambda u: u)
        scores = np.zeros(len(distinct), dtype=np.float64)
        if self._prefix_reuse:
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, unit in enumerate(distinct):
                groups.setdefault(unit.prefix, []).append(i)
            for prefix, members in groups.items():
                rests = [list(distinct[i].rest) for i in members]
                scores[members] = self._score_rows(list(prefix), rests)
        else:
            scores[:] = self._score_rows([], [list(u.prefix + u.rest) for u in distinct])
        return scores[inverse]

    def finish(
        self,
        plan: ScoringPlan,
        scores: np.ndarray,
        documents: Sequence[Candidate],
        top_n: int | None,
    ) -> Ranking:
        """Step 3: each candidate's windows aggregated, calibrated, ranked."""
        return rank_windows(plan, scores, documents, top_n, self._aggregate, self.calibrate)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw scores, one float64 per (query, document) pair, in input order; a long
        document's windows are aggregated (`aggregate`). One model pass for all pairs."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        by_query: dict[str, list[int]] = {}
        for i, (query, _) in enumerate(pairs):
            by_query.setdefault(query, []).append(i)
        plans = [
            (members, self.plan(query, [pairs[i][1] for i in members]))
            for query, members in by_query.items()
        ]
        flat = [u for _, p in plans for u in p.units]
        window_scores = self.score_units(flat)
        out = np.zeros(len(pairs), dtype=np.float64)
        start = 0
        for members, p in plans:
            part = window_scores[start : start + len(p.units)]
            start += len(p.units)
            raw, _ = aggregate_windows(
                part, np.asarray(p.owner, dtype=np.int64), p.n_documents, self._aggregate
            )
            out[members] = raw
        return out

    # ---- prompt rendering --------------------------------------------------------------
    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _segment_ids(self, segments: Sequence[str], values: dict[str, str]) -> list[int]:
        return [t for s in segments for t in self._ids(s.format(**values))]

    def _render_query(self, query: str) -> _Query:
        recipe = self._recipe
        values = {
            "query": query.strip() if recipe.strip else query,
            "instruction": recipe.instruction_text(self._instruction),
            "document": "",
        }
        d = recipe.document_segment
        prefix = self._bos + self._segment_ids(recipe.segments[:d], values)
        tail = self._segment_ids(recipe.segments[d + 1 :], values)
        excess = len(prefix) + len(tail) - self._max_length // 2
        if excess > 0:  # cut the query, never a document
            values["query"] = self._cut(values["query"], len(self._ids(values["query"])) - excess)
            prefix = self._bos + self._segment_ids(recipe.segments[:d], values)
            tail = self._segment_ids(recipe.segments[d + 1 :], values)
            if len(prefix) + len(tail) > self._max_length // 2:
                raise InvalidInputError(
                    f"max_length {self._max_length} is too small for the {recipe.name} "
                    f"template ({len(prefix) + len(tail)} tokens without a document)"
                )
        return _Query(tuple(prefix), tuple(tail), values)

    def _cut(self, text: str, limit: int) -> str:
        """`text` cut after its first `limit` tokens (at least nothing)."""
        return cut_to_tokens(self._tokenizer, [text], limit)[0] if limit > 0 else ""

    def _document_ids(self, rendered: _Query, text: str) -> list[int]:
        segment = self._recipe.segments[self._recipe.document_segment]
        return self._ids(segment.format(**{**rendered.fields, "document": text}))

    def _windows(self, rendered: _Query, text: str, options: RerankOptions) -> list[LLMUnit]:
        if self._recipe.strip:
            text = text.strip()
        if options.max_tokens_per_doc is not None:
            text = self._cut(text, options.max_tokens_per_doc)
        budget = self._max_length - len(rendered.prefix) - len(rendered.tail)
        whole = self._document_ids(rendered, text)
        if len(whole) <= budget:
            return [LLMUnit(rendered.prefix, tuple(whole) + rendered.tail)]
        offsets = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        room = budget - len(self._document_ids(rendered, ""))
        if room < 8:
            raise InvalidInputError(f"max_length {self._max_length} leaves no room for documents")
        overlap = room // 4 if self._stride is None else int(self._stride)
        if not 0 <= overlap < room:
            raise InvalidInputError(f"window_stride must be in [0, {room}) for this template")
        limit = options.max_chunks_per_doc
        return list(self._cut_windows(rendered, text, offsets, budget, room, overlap, limit))

    def _cut_windows(
        self,
        rendered: _Query,
        text: str,
        offsets: Sequence[tuple[int, int]],
        budget: int,
        room: int,
        overlap: int,
        limit: int | None,
    ) -> Iterator[LLMUnit]:
        n, start, made = len(offsets), 0, 0
        while True:
            end = min(n, start + room)
            while True:
                piece = text[offsets[start][0] : offsets[end - 1][1]]
                ids = self._document_ids(rendered, piece)
                if len(ids) <= budget or end == start + 1:
                    break
                end = max(start + 1, end - (len(ids) - budget))  # a token merged at the seam
            yield LLMUnit(rendered.prefix, tuple(ids) + rendered.tail)
            made += 1
            if end >= n or (limit is not None and made >= limit):
                return
            start = max(end - overlap, start + 1)

    # ---- the model -----------------------------------------------------------------------
    def _score_rows(self, prefix: list[int], rows: list[list[int]]) -> np.ndarray:
        """Raw scores of `prefix + row` for every row, in order (the prefix run once)."""
        import torch

        out = np.zeros(len(rows), dtype=np.float64)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        with torch.inference_mode():
            cache = self._prefix_cache(prefix) if prefix else None
            for batch in pack_batches(lengths, self._batch_tokens):
                width = int(lengths[batch].max())
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch.tolist()):
                    ids[r, : lengths[i]] = torch.tensor(rows[i], dtype=torch.long)
                kwargs: dict[str, Any] = {"use_cache": cache is not None}
                if cache is not None:
                    kwargs["cache"] = self._expanded(cache, len(batch))
                hidden = self._decoder(ids.to(self._device), **kwargs).last_hidden_state
                last = torch.as_tensor(lengths[batch] - 1, device=hidden.device)
                picked = hidden[torch.arange(len(batch), device=hidden.device), last]
                out[batch] = self._head_scores(picked)
        return out

    def _prefix_cache(self, prefix: list[int]) -> Any:
        import torch

        ids = torch.tensor([prefix], dtype=torch.long, device=self._device)
        return self._decoder(ids, use_cache=True).cache

    def _expanded(self, cache: Any, batch: int) -> Any:
        """A fresh cache holding the prefix's keys and values for `batch` rows (the
        prefix cache itself is never modified: the model appends to the copy)."""
        from transformers import DynamicCache

        fresh = DynamicCache(config=self._config)
        for i, layer in enumerate(cache.layers):
            fresh.update(
                layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1), i
            )
        return fresh

    def _head_scores(self, hidden: Any) -> np.ndarray:
        import torch

        logits = hidden.to(self._head.dtype) @ self._head.T
        if self._head_bias is not None:
            logits = logits + self._head_bias
        logits = logits.float()
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        score = logits[:, 0] - logits[:, 1] if self._false_id is not None else logits[:, 0]
        return np.asarray(score.cpu().numpy(), dtype=np.float64)


def _quantize_mlps(model: Any, path: Path) -> None:
    """Swap the Linear layers of every decoder layer's MLP block for dynamic int8 ones
    (`torch.ao.quantization.quantize_dynamic`: int8 weights, activations quantized per
    batch). Attention projections stay in float: quantizing them too was faster still but
    moved the ranking past the bar (Spearman 0.974 < 0.98 against float32 on the Lee
    passages, benchmarks/llm_rerank_latency.py; MLPs only: 0.98)."""
    import torch

    targets = [name for name, _ in model.named_modules() if name.endswith(".mlp")]
    if not targets:
        raise ModelLoadError(
            f"dtype=int8 needs decoder layers with an `mlp` block; {path} has none"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        for name in targets:
            parent, _, child = name.rpartition(".")
            owner = model.get_submodule(parent)
            setattr(owner, child,
                    quantize_dynamic(getattr(owner, child), {torch.nn.Linear}, dtype=torch.qint8))


def _context_length(config: Any) -> int | None:
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if limit is not None else None


def _resolve_dtype(dtype: str, device: str) -> str:
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bfloat16"
    return "float32"
