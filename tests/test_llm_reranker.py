"""`llm-reranker:`: causal-LM rerankers on tiny random-weight Qwen3, Qwen2, Gemma and Gemma2
models. Scores agree with sentence-transformers' `CrossEncoder` (Transformer + LogitScore,
as it loads causal-LM rerankers) and with each family's model-card recipe computed
directly with transformers; prefix reuse changes no score; the reranker keeps the
contract, is served with the library's scores and runs from the CLI and the Python API."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from models import build_tiny_causal_lm, build_tiny_cross_encoder
from reranker_contract import check_reranker_contract, check_served_matches_library
from shortlist.errors import InvalidInputError, ModelLoadError, SpecError
from shortlist.rerank.base import RerankOptions, rerank_planned
from shortlist.rerank.cache import MemoryScoreCache
from shortlist.rerank.llm_reranker import RECIPES, LLMReranker, Recipe
from shortlist.rerank.registry import load_reranker

QUERY = "how do solar panels store energy"
DOCS = [
    "Solar panels turn sunlight into electricity; batteries store the energy",
    "The history of the Roman empire spans many centuries",
    "A recipe for banana bread with walnuts",
    "Energy storage for solar power uses lithium batteries",
    "the cat and the dog read a book in the city",
]
# Ends that meet a separator: punctuation and newlines next to "\n" (byte-level BPE merges).
HARD_QUERY = "how do solar panels store energy?"
HARD_DOCS = [*DOCS, " Panels on the roof produce power during the day.\n", "Cells (lithium)!"]

# architecture, template (None: by architecture), recipe it must resolve to
CASES = {
    "qwen3-reranker": ("qwen3", None),
    "mxbai-rerank-v2": ("qwen2", None),
    "bge-reranker-v2-gemma": ("gemma", None),
    "bge-on-gemma2": ("gemma2", "bge-reranker-v2-gemma"),
    "zerank": ("qwen3", "zerank"),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("causal")
    built = {arch: build_tiny_causal_lm(root / arch, arch, max_positions=1024)
             for arch in ("qwen3", "qwen2", "gemma", "gemma2")}
    return {case: built[arch] for case, (arch, _) in CASES.items()}


def _reranker(folders: dict[str, Path], case: str, **kwargs: Any) -> LLMReranker:
    _, template = CASES[case]
    return LLMReranker(str(folders[case]), template=template, **kwargs)


# ---- agreement with sentence-transformers ------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_scores_equal_sentence_transformers_cross_encoder(
    case: str, folders: dict[str, Path], tmp_path: Path
) -> None:
    """sentence-transformers renders a pair through the model's chat template (roles query
    and document) and scores it with LogitScore; the folder gets the template that
    renders the family's prompt, as published LLM rerankers ship one."""
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore

    ours = _reranker(folders, case)
    recipe = ours.recipe
    assert recipe.name == case.replace("bge-on-gemma2", "bge-reranker-v2-gemma")
    folder = Path(shutil.copytree(folders[case], tmp_path / "st"))
    (folder / "chat_template.jinja").write_text(recipe.chat_template(bos_token="<bos>"))
    true_id, false_id = ours.answer_token_ids
    st = CrossEncoder(
        modules=[Transformer(str(folder), transformer_task="text-generation"),
                 LogitScore(true_id, false_id)],
        activation_fn=torch.nn.Identity(),
    )
    pairs = [(QUERY, d) for d in DOCS]
    if recipe.strip:  # the template trims, as zerank does: give it untrimmed texts
        pairs = [(f" {q}\n", f"{d} ") for q, d in pairs]
    want = st.predict(pairs, batch_size=3)
    got = ours.score_pairs(pairs)
    assert np.ptp(got) > 0.1, "random weights must separate the pairs for this to mean much"
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    ranking = ours.rerank(QUERY, DOCS)
    for hit in ranking:
        assert hit.index is not None
        assert hit.raw_score == pytest.approx(float(want[hit.index]), abs=1e-4)


# ---- agreement with the model cards' own recipes ---------------------------------------


def _prepare_for_model(first: list[int], second: list[int], max_length: int) -> dict[str, Any]:
    """transformers 4's `tokenizer.prepare_for_model(first, second, truncation="only_second",
    max_length=..., add_special_tokens=False)`, which the cards call (gone in transformers 5)."""
    return {"input_ids": first + second[: max(0, max_length - len(first))]}


def _last_logits(model: Any, batch: Any) -> Any:
    import torch

    with torch.inference_mode():
        return model(**batch).logits[:, -1, :].float()


def card_qwen3(
    folder: Path, pairs: list[tuple[str, str]], instruction: str | None
) -> np.ndarray:
    """Qwen3-Reranker's model card (transformers usage), as written there: P(yes)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    max_length = 8192
    prefix = ("<|im_start|>system\nJudge whether the Document meets the requirements based on "
              "the Query and the Instruct provided. Note that the answer can only be \"yes\" or "
              "\"no\".<|im_end|>\n<|im_start|>user\n")
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    task = instruction or (
        "Given a web search query, retrieve relevant passages that answer the query")
    texts = [f"<Instruct>: {task}\n<Query>: {q}\n<Document>: {d}" for q, d in pairs]
    inputs = tokenizer(texts, padding=False, truncation="longest_first",
                       return_attention_mask=False,
                       max_length=max_length - len(prefix_tokens) - len(suffix_tokens))
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    batch = tokenizer.pad(inputs, padding=True, return_tensors="pt")
    logits = _last_logits(model, batch)
    scores = torch.stack([logits[:, token_false_id], logits[:, token_true_id]], dim=1)
    return torch.nn.functional.log_softmax(scores, dim=1)[:, 1].exp().numpy()


def card_bge_gemma(
    folder: Path, pairs: list[tuple[str, str]], instruction: str | None
) -> np.ndarray:
    """bge-reranker-v2-gemma's model card (`get_inputs`, normalize=True): sigmoid(Yes logit)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    max_length = 1024
    prompt = instruction or (
        "Given a query A and a passage B, determine whether the passage contains an answer to "
        "the query by providing a prediction of either 'Yes' or 'No'.")
    sep_inputs = tokenizer("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    prompt_inputs = tokenizer(prompt, return_tensors=None, add_special_tokens=False)["input_ids"]
    inputs = []
    for query, passage in pairs:
        query_inputs = tokenizer(f"A: {query}", return_tensors=None, add_special_tokens=False,
                                 max_length=max_length * 3 // 4, truncation=True)
        passage_inputs = tokenizer(f"B: {passage}", return_tensors=None,
                                   add_special_tokens=False, max_length=max_length,
                                   truncation=True)
        item = _prepare_for_model(
            [tokenizer.bos_token_id] + query_inputs["input_ids"],
            sep_inputs + passage_inputs["input_ids"], max_length)
        item["input_ids"] = item["input_ids"] + sep_inputs + prompt_inputs
        item["attention_mask"] = [1] * len(item["input_ids"])
        inputs.append(item)
    tokenizer.padding_side = "left"
    batch = tokenizer.pad(inputs, padding=True, return_tensors="pt")
    yes_loc = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    return torch.sigmoid(_last_logits(model, batch)[:, yes_loc]).numpy()


def card_mxbai_v2(
    folder: Path, pairs: list[tuple[str, str]], instruction: str | None
) -> np.ndarray:
    """mixedbread's `MxbaiRerankV2.prepare_inputs` + `forward`: sigmoid(logit 1 - logit 0)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    max_length = 8192

    def ids(x: str) -> list[int]:
        return list(tokenizer(x, return_tensors=None, add_special_tokens=False)["input_ids"])

    task = ("You are a search relevance expert who evaluates how well documents match search "
            "queries. For each query-document pair, carefully analyze the semantic relationship "
            "between them, then provide your binary relevance judgment (0 for not relevant, 1 "
            "for relevant).\nRelevance:")
    prefix = ids("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                 "assistant.<|im_end|>\n<|im_start|>user\n")
    suffix = ids("<|im_end|>\n<|im_start|>assistant\n")
    sep = ids("\n")
    inputs = []
    for query, document in pairs:
        query_prompt = f"query: {query}"
        if instruction:
            query_prompt = f"instruction: {instruction}\n{query_prompt}"
        query_inputs = tokenizer(query_prompt, return_tensors=None, add_special_tokens=False,
                                 max_length=max_length * 3 // 4, truncation=True)
        document_inputs = tokenizer(f"document: {document}", return_tensors=None,
                                    add_special_tokens=False, max_length=max_length,
                                    truncation=True)
        item = _prepare_for_model(
            query_inputs["input_ids"], sep + document_inputs["input_ids"], max_length)
        item["input_ids"] = prefix + item["input_ids"] + sep + ids(task) + suffix
        item["attention_mask"] = [1] * len(item["input_ids"])
        inputs.append(item)
    batch = tokenizer.pad(inputs, padding="longest", pad_to_multiple_of=8, return_tensors="pt")
    logits = _last_logits(model, batch)
    yes, no = ids("1")[0], ids("0")[0]
    return torch.sigmoid(logits[:, yes] - logits[:, no]).numpy()


def card_zerank(folder: Path, pairs: list[tuple[str, str]], instruction: str | None) -> np.ndarray:
    """zerank's `modeling_zeranker.predict`: Qwen3's chat template with the query as the system
    turn and the document as the user turn (written out here: the test tokenizer has no
    chat template), right padding, sigmoid(Yes logit / 5)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), padding_side="right")
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    texts = [f"<|im_start|>system\n{q.strip()}<|im_end|>\n<|im_start|>user\n{d.strip()}"
             "<|im_end|>\n<|im_start|>assistant\n" for q, d in pairs]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch, use_cache=False).logits
    last = batch["attention_mask"].sum(dim=1) - 1
    last_logits = logits[torch.arange(len(texts)), last]
    yes = tokenizer.encode("Yes", add_special_tokens=False)[0]
    return torch.sigmoid(last_logits[:, yes].float() / 5.0).numpy()


CARDS: dict[str, Callable[[Path, list[tuple[str, str]], str | None], np.ndarray]] = {
    "qwen3-reranker": card_qwen3,
    "mxbai-rerank-v2": card_mxbai_v2,
    "bge-reranker-v2-gemma": card_bge_gemma,
    "bge-on-gemma2": card_bge_gemma,
    "zerank": card_zerank,
}


@pytest.mark.parametrize(
    ("case", "instruction"),
    [(case, None) for case in CASES]
    + [(case, "Find passages about renewable power") for case in CASES if case != "zerank"],
)  # zerank takes no instruction: test_template_and_instruction_errors
def test_calibrated_scores_equal_the_model_card_recipe(
    case: str, instruction: str | None, folders: dict[str, Path]
) -> None:
    ours = _reranker(folders, case, instruction=instruction)
    pairs = [(HARD_QUERY, d) for d in HARD_DOCS]
    want = CARDS[case](folders[case], pairs, instruction)
    got = ours.calibrate(ours.score_pairs(pairs))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_qwen3_prompt_split_is_token_exact_under_byte_level_bpe(folders: dict[str, Path]) -> None:
    """Qwen3-Reranker's card tokenizes instruction, query and document as ONE string; the
    reranker tokenizes the query part and the document part apart (to share the query's
    cache). Under a byte-level BPE with Qwen's pre-tokenizer the two agree."""
    ours = LLMReranker(str(folders["mxbai-rerank-v2"]), template="qwen3-reranker")
    pairs = [(HARD_QUERY, d) for d in HARD_DOCS]
    want = card_qwen3(folders["mxbai-rerank-v2"], pairs, None)
    np.testing.assert_allclose(ours.calibrate(ours.score_pairs(pairs)), want, atol=1e-5, rtol=0)


# ---- speed paths change no score ---------------------------------------------------------


@pytest.mark.parametrize("case", ["qwen3-reranker", "mxbai-rerank-v2", "bge-on-gemma2"])
def test_prefix_reuse_leaves_scores_unchanged(case: str, folders: dict[str, Path]) -> None:
    reuse = _reranker(folders, case, batch_tokens=256)
    full = _reranker(folders, case, prefix_reuse=False, batch_tokens=256)
    queries = [QUERY, "roman bread history"]
    plans = [reuse.plan(q, HARD_DOCS) for q in queries]
    units = [u for p in plans for u in p.units]
    merged = reuse.score_units(units)  # two queries' units in one call, as the server batches
    np.testing.assert_allclose(merged, full.score_units(units), atol=1e-5, rtol=0)
    alone = np.concatenate([reuse.score_units(p.units) for p in plans])
    np.testing.assert_allclose(merged, alone, atol=1e-5, rtol=0)


def test_prefix_is_run_once_per_query(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    reranker = _reranker(folders, "qwen3-reranker", batch_tokens=64)
    runs: list[int] = []
    original = reranker._prefix_cache

    def counting(prefix: list[int]) -> Any:
        runs.append(len(prefix))
        return original(prefix)

    monkeypatch.setattr(reranker, "_prefix_cache", counting)
    plan = reranker.plan(QUERY, DOCS)
    reranker.score_units(plan.units)
    assert runs == [len(plan.units[0].prefix)]
    assert all(u.prefix == plan.units[0].prefix for u in plan.units)


def test_bfloat16_and_int8_paths(folders: dict[str, Path]) -> None:
    import torch

    pairs = [(QUERY, d) for d in DOCS]
    fp32 = _reranker(folders, "qwen3-reranker").score_pairs(pairs)
    bf16 = _reranker(folders, "qwen3-reranker", dtype="bfloat16")
    assert bf16.dtype == "bfloat16"
    assert next(bf16._model.parameters()).dtype == torch.bfloat16
    np.testing.assert_allclose(bf16.score_pairs(pairs), fp32, atol=0.1)
    int8 = _reranker(folders, "qwen3-reranker", dtype="int8")
    got = int8.score_pairs(pairs)
    assert np.isfinite(got).all() and not np.allclose(got, fp32, atol=1e-6)
    np.testing.assert_allclose(got, fp32, atol=0.2)
    with pytest.raises(InvalidInputError, match="dtype"):
        _reranker(folders, "qwen3-reranker", dtype="float8")
    with pytest.raises(InvalidInputError, match="int8 runs on CPU only"):
        _reranker(folders, "qwen3-reranker", dtype="int8", device="cuda")


# ---- long documents, options ---------------------------------------------------------------

LONG = " ".join(f"the {w} river and the city of solar panels {i}" for i, w in
                enumerate(["red", "green", "blue", "old", "new"] * 12))


def test_long_documents_are_windowed_never_truncated(folders: dict[str, Path]) -> None:
    reranker = _reranker(folders, "qwen3-reranker", max_length=160, window_stride=10)
    plan = reranker.plan(QUERY, ["short one", LONG])
    windows = [u for u, o in zip(plan.units, plan.owner, strict=True) if o == 1]
    assert len(windows) > 2
    assert max(plan.tokens) <= 160
    tokenizer = reranker._tokenizer
    doc_tokens = tokenizer(LONG, add_special_tokens=False)["input_ids"]
    seen = [t for u in windows for t in u.rest]
    assert set(doc_tokens) <= set(seen)  # every word of the document reaches the model
    assert tokenizer.convert_tokens_to_ids("59") in seen  # the last one too
    scores = reranker.score_units(plan.units)
    ranking = reranker.finish(plan, scores, ["short one", LONG], None)
    long_hit = next(h for h in ranking if h.index == 1)
    assert long_hit.raw_score == pytest.approx(float(scores[1:].max()))
    assert long_hit.window == int(np.argmax(scores[1:]))
    one = reranker.plan(QUERY, [LONG], RerankOptions(max_chunks_per_doc=1))
    assert len(one.units) == 1
    cut = reranker.plan(QUERY, [LONG], RerankOptions(max_tokens_per_doc=5))
    assert len(cut.units) == 1 and len(cut.units[0].rest) < 20
    with pytest.raises(InvalidInputError, match="max_tokens_per_doc"):
        reranker.plan(QUERY, [LONG], RerankOptions(max_tokens_per_doc=0))


def test_long_query_is_cut_to_half_the_window(folders: dict[str, Path]) -> None:
    reranker = _reranker(folders, "qwen3-reranker", max_length=200)
    plan = reranker.plan(LONG, ["a short document"])
    assert len(plan.units[0].prefix) <= 100
    with pytest.raises(InvalidInputError, match="too small for the qwen3-reranker template"):
        _reranker(folders, "qwen3-reranker", max_length=80).plan(QUERY, ["x"])


# ---- bad input --------------------------------------------------------------------------------


def test_window_larger_than_the_context_is_an_error(folders: dict[str, Path]) -> None:
    too_long = r"max_length 5000 is larger than the context.*1024"
    with pytest.raises(InvalidInputError, match=too_long):
        _reranker(folders, "qwen3-reranker", max_length=5000)


def test_architecture_without_a_template(tmp_path: Path) -> None:
    import transformers as tf

    folder = build_tiny_causal_lm(tmp_path / "llama-like", "qwen3")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LlamaForCausalLM"]
    config["model_type"] = "llama"
    (folder / "config.json").write_text(json.dumps(config))
    tf.LlamaForCausalLM(tf.LlamaConfig.from_pretrained(str(folder))).save_pretrained(str(folder))
    with pytest.raises(ModelLoadError, match=r"LlamaForCausalLM.*\?template=") as exc:
        LLMReranker(str(folder))
    assert "qwen3-reranker" in str(exc.value)
    # An explicit template makes the same folder usable.
    assert LLMReranker(str(folder), template="qwen3-reranker").recipe.name == "qwen3-reranker"


def test_wrong_kind_errors_name_the_right_kind(folders: dict[str, Path], tmp_path: Path) -> None:
    causal = folders["qwen3-reranker"]
    with pytest.raises(ModelLoadError, match=f"llm-reranker:{causal}"):
        load_reranker(f"cross-encoder:{causal}")
    classifier = build_tiny_cross_encoder(tmp_path / "bert", "bert")
    with pytest.raises(ModelLoadError, match=f"cross-encoder:{classifier}"):
        load_reranker(f"llm-reranker:{classifier}")


def test_template_and_instruction_errors(folders: dict[str, Path]) -> None:
    with pytest.raises(SpecError, match="unknown template 'rankgpt'.*qwen3-reranker"):
        LLMReranker(str(folders["qwen3-reranker"]), template="rankgpt")
    with pytest.raises(InvalidInputError, match="takes no instruction"):
        _reranker(folders, "zerank", instruction="be nice")
    with pytest.raises(SpecError, match="unknown parameter 'temperature'"):
        load_reranker(f"llm-reranker:{folders['zerank']}?temperature=2")
    with pytest.raises(SpecError, match="exactly one segment"):
        Recipe(name="x", source="", segments=("{query}",), true_token="yes")
    with pytest.raises(SpecError, match="unknown placeholder"):
        Recipe(name="x", source="", segments=("{query} {doc}", "{document}"), true_token="yes")


def test_missing_answer_token(folders: dict[str, Path], tmp_path: Path) -> None:
    recipe = {**_fields(RECIPES["qwen3-reranker"]), "true_token": "Affirmative", "name": "odd"}
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(ModelLoadError, match="no 'Affirmative' token"):
        LLMReranker(str(folders["qwen3-reranker"]), template=str(path))


def _fields(recipe: Recipe) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(recipe)
    data["segments"] = list(recipe.segments)
    return data


def test_recipe_file_overrides_the_lookup(folders: dict[str, Path], tmp_path: Path) -> None:
    """A new family is a JSON recipe: the Qwen3 recipe written out scores like the built-in."""
    path = tmp_path / "my-family.json"
    path.write_text(json.dumps({**_fields(RECIPES["qwen3-reranker"]), "name": "mine"}))
    folder = folders["qwen3-reranker"]
    custom = load_reranker(f"llm-reranker:{folder}?template={path}")
    assert isinstance(custom, LLMReranker) and custom.recipe.name == "mine"
    pairs = [(QUERY, d) for d in DOCS]
    np.testing.assert_allclose(custom.score_pairs(pairs),
                               LLMReranker(str(folder)).score_pairs(pairs), atol=1e-6)


# ---- contract, serving, cache, CLI, Python API -------------------------------------------------


@pytest.fixture(scope="module")
def spec(folders: dict[str, Path]) -> str:
    return f"llm-reranker:{folders['qwen3-reranker']}?max_length=200&batch_tokens=512"


def test_contract_and_served_scores(spec: str) -> None:
    pytest.importorskip("fastapi")
    reranker = load_reranker(spec)
    check_reranker_contract(reranker)
    assert len(reranker.rerank("q", ["x " * 400]).hits) == 1  # windows within the budget
    for batching in (True, False):
        check_served_matches_library(reranker, batching=batching, tolerance=1e-5)


def test_served_v2_rerank_names_the_model(spec: str) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from shortlist.serve.app import ServeConfig, create_app

    reranker = load_reranker(spec)
    want = reranker.rerank(QUERY, DOCS)
    with TestClient(create_app(ServeConfig(), {"qwen3-tiny": reranker})) as client:
        r = client.post("/v2/rerank", json={"model": "qwen3-tiny", "query": QUERY,
                                            "documents": DOCS, "top_n": 2})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == [h.index for h in want][:2]
    assert results[0]["relevance_score"] == pytest.approx(want[0].score, abs=1e-6)


def test_score_cache_serves_repeats(spec: str) -> None:
    cache = MemoryScoreCache()
    cached = load_reranker(spec, cache=cache)
    first = cached.rerank(QUERY, DOCS)
    again = cached.rerank(QUERY, DOCS)
    assert cache.stats().hits == len(DOCS)
    assert [h.score for h in first] == [h.score for h in again]


def test_cli_rerank_json(spec: str, tmp_path: Path) -> None:
    from clirun import run_cli

    docs = tmp_path / "d.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(DOCS)))
    result = run_cli("rerank", QUERY, "--model", spec, "--docs", str(docs), "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    want = load_reranker(spec).rerank(QUERY, DOCS)
    assert [r["id"] for r in out["results"]] == [f"d{h.index}" for h in want]
    assert out["results"][0]["score"] == pytest.approx(want[0].score, abs=1e-6)


def test_python_api_and_protocol(spec: str) -> None:
    import shortlist
    from shortlist.rerank.base import PairScorer, PlannedReranker

    reranker = shortlist.load_reranker(
        spec + "&instruction=Given%20a%20question,%20find%20answers"
    )
    assert isinstance(reranker, PlannedReranker) and isinstance(reranker, PairScorer)
    assert "instruction=Given a question, find answers" in reranker.name
    ranking = rerank_planned(reranker, QUERY, DOCS, top_n=3)
    assert len(ranking) == 3 and "rerank" in ranking.timings_ms
    plain = load_reranker(spec)
    assert ranking[0].raw_score != pytest.approx(
        next(h.raw_score for h in plain.rerank(QUERY, DOCS) if h.index == ranking[0].index)
    )


def test_readme_llm_reranker_specs_parse() -> None:
    """The README's example specs stay valid: kind, parameters and template names."""
    import re

    from shortlist.rerank.registry import parse_spec

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    specs = re.findall(r"`(llm-reranker:[^`]+)`", readme)
    assert len(specs) >= 4
    for spec in specs:
        parsed = parse_spec(spec)
        template = parsed.params.get("template")
        assert template is None or template in RECIPES


def test_eval_runs_the_llm_reranker_beside_the_first_stage(spec: str, tmp_path: Path) -> None:
    from clirun import run_cli
    from tiny_beir import write_tiny_beir

    dataset = write_tiny_beir(tmp_path / "beir")
    out = tmp_path / "eval.json"
    result = run_cli(
        "eval", str(dataset), "--model", "hashing:32", "--cache-dir", str(tmp_path / "c"),
        "--pipeline", "bm25", "--pipeline", f"llm=bm25+{spec}", "-k", "5",
        "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "llm" in result.stdout
    assert "llm" in out.read_text()
