"""Regenerate the tiny ColBERT checkpoints under tests/data/colbert/ and PyLate's scores.

PyLate pins versions of sentence-transformers and transformers that the shortlist venv
does not have, so this runs in a side venv of its own (CPU torch first, so pip never
pulls a CUDA build):

    python3 -m venv /work/venvs/pylate
    /work/venvs/pylate/bin/pip install torch==2.13.0
    /work/venvs/pylate/bin/pip install --no-deps pylate==1.6.0
    /work/venvs/pylate/bin/pip install sentence-transformers==5.3.0 transformers==5.3.0 \
        datasets pandas ujson==5.12.0
    /work/venvs/pylate/bin/python tests/data/make_colbert_fixture.py

For each variant it builds a tiny random-weight BERT (WordPiece vocabulary of a few
hundred tokens, 2 layers, hidden size 32), wraps it in `pylate.models.ColBERT` (which
adds the [Q]/[D] marker tokens and a random Dense projection), saves it with PyLate's
own `save`, reloads the saved folder with PyLate, and records for fixed queries and
documents (the `stanford` variant is written in the Stanford/colbert-ir layout instead,
`HF_ColBERT` weights plus artifact.metadata, and read by PyLate as it reads
colbert-ir/colbertv2.0):

- `pairwise`: `colbert_scores_pairwise(encode(q, is_query=True), encode(d, is_query=False))`
  for every (query, document) pair: PyLate's MaxSim over the document's own tokens;
- `rank_rerank`: what `pylate.rank.rerank` returns for each query over all documents
  (it pads documents with zero vectors and does not mask them, so a short document's
  per-query-token maxima are floored at 0; shortlist scores each pair on its own and
  matches `pairwise`, see shortlist/rerank/colbert.py);
- the token counts of each encoded query and document.

Documents are shorter than `document_length` except `LONG`, whose PyLate score is of
its truncated first `document_length` tokens.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "colbert"

WORDS = (
    "the a of and to in is for on with as by at from it this that be are was or an "
    "solar panel panels battery batteries energy store storage power night day sun "
    "python module function class return value list dict string file path error "
    "index query passage document rerank score model token batch window search "
    "cat dog bird fish tree river mountain city car train music paint bread apple "
    "red green blue fast slow big small old new open close read write sort find"
).split()

QUERIES = [
    "how do solar panels store energy",
    "Python: sort a list, fast!",
    "   river   ",
]
DOCUMENTS = [
    "Solar panels store energy in batteries for the night.",
    "The history of the city; old trains, new cars.",
    "python sort: list.sort() is fast, sorted() returns a new list!",
    "A red apple, a green apple... and bread?",
    "river",
    "  the big blue river runs by the mountain  ",
]
LONG = " ".join(["solar panels store energy in a battery at night"] * 6)

VARIANTS = {
    # PyLate's defaults: [Q]/[D] prefixes, expansion to query_length with [MASK], the
    # expansion tokens not attended to, punctuation skiplist, one Dense without bias.
    "default": {"query_length": 16, "document_length": 24, "embedding_size": 16},
    # Expansion tokens attended to; a projection with bias.
    "attend": {
        "query_length": 12,
        "document_length": 32,
        "embedding_size": 8,
        "attend_to_expansion_tokens": True,
        "bias": True,
    },
    # No query expansion, no marker tokens, skiplist of two words only.
    "plain": {
        "query_length": 10,
        "document_length": 40,
        "embedding_size": 8,
        "do_query_expansion": False,
        "query_prefix": "",
        "document_prefix": "",
        "skiplist_words": [",", "!"],
    },
    # A Stanford-format checkpoint, read as PyLate reads colbert-ir/colbertv2.0.
    "stanford": {},
    # Two Dense modules (PyLate appends one when asked for another embedding size), the
    # first with a tanh activation.
    "chain": {"query_length": 14, "document_length": 28, "embedding_size": 16},
}
STANFORD = "stanford"
CHAIN = "chain"

CONFIG_VARIANTS = {
    # A checkpoint variant that differs only in config_sentence_transformers.json (no
    # weights of its own): a default prompt, which sentence-transformers prepends to
    # queries and documents alike.
    "prompt": ("default", {"default_prompt_name": "query",
                           "prompts": {"query": "search: ", "document": ""}}),
}


def config_variant(base: str, config: dict) -> dict:
    """PyLate's scores for `base` with `config` merged into its sentence-transformers
    config (the test applies the same change to a copy)."""
    from pylate import models

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / base
        shutil.copytree(OUT / base, folder)
        path = folder / "config_sentence_transformers.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
        scores = _scores(models.ColBERT(str(folder), device="cpu"))
    return {"base": base, "config": config, **scores}


def _tokenizer(folder: Path, extra: tuple[str, ...] = ()) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-_/[]"
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *extra, *WORDS]
    vocab_list += list(letters) + [f"##{c}" for c in letters]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        cls_token="[CLS]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=512,
    ).save_pretrained(str(folder))


def _bert(seed: int) -> Any:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=256,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertModel(config)


def _backbone(folder: Path, seed: int) -> None:
    _tokenizer(folder)
    _bert(seed).save_pretrained(str(folder))


def _stanford(folder: Path, seed: int) -> None:
    """A Stanford-format (colbert-ir) checkpoint: an `HF_ColBERT` whose weights are the
    BERT under `bert.` plus `linear.weight`, and its settings in artifact.metadata."""
    from safetensors.torch import save_file

    _tokenizer(folder, extra=("[unused0]", "[unused1]"))
    bert = _bert(seed)
    bert.config.architectures = ["HF_ColBERT"]
    bert.config.save_pretrained(str(folder))
    torch.manual_seed(seed + 1)
    state = {f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    state["linear.weight"] = torch.nn.Linear(32, 16, bias=False).weight.detach().contiguous()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "artifact.metadata").write_text(json.dumps({
        "query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": 12,
        "doc_maxlen": 20, "attend_to_mask_tokens": False, "dim": 16,
    }, indent=1))


def build(name: str, options: dict, seed: int) -> dict:
    from pylate import models

    target = OUT / name
    if target.exists():
        shutil.rmtree(target)
    if name == STANFORD:
        target.mkdir()
        _stanford(target, seed)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            _backbone(Path(tmp), seed)
            torch.manual_seed(seed + 1)
            model = models.ColBERT(tmp, device="cpu", **options)
            model.save(str(target))
        if name == CHAIN:
            model = models.ColBERT(str(target), device="cpu", embedding_size=8)
            shutil.rmtree(target)
            model.save(str(target))
            dense = target / "1_Dense" / "config.json"
            config = json.loads(dense.read_text())
            config["activation_function"] = "torch.nn.modules.activation.Tanh"
            dense.write_text(json.dumps(config, indent=4))
        (target / "README.md").unlink(missing_ok=True)

    scores = _scores(models.ColBERT(str(target), device="cpu"))
    return {"options": options, **scores}


def _scores(model: Any) -> dict:
    from pylate.rank import rerank
    from pylate.scores import colbert_scores_pairwise

    documents = [*DOCUMENTS, LONG]
    q = model.encode(QUERIES, is_query=True, batch_size=2)
    d = model.encode(documents, is_query=False, batch_size=3)
    pairwise = [
        [float(colbert_scores_pairwise([torch.from_numpy(qe)], [torch.from_numpy(de)])[0])
         for de in d]
        for qe in q
    ]
    ranked = rerank(
        documents_ids=[list(range(len(documents)))] * len(QUERIES),
        queries_embeddings=q,
        documents_embeddings=[d] * len(QUERIES),
    )
    rank_rerank = [
        [next(r["score"] for r in per_query if r["id"] == j) for j in range(len(documents))]
        for per_query in ranked
    ]
    return {
        "query_tokens": [int(x.shape[0]) for x in q],
        "document_tokens": [int(x.shape[0]) for x in d],
        "pairwise": pairwise,
        "rank_rerank": rank_rerank,
    }


def main() -> None:
    import pylate
    import sentence_transformers
    import transformers

    random.seed(0)
    OUT.mkdir(exist_ok=True)
    record = {
        "generated_by": "tests/data/make_colbert_fixture.py",
        "versions": {
            "pylate": pylate.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "queries": QUERIES,
        "documents": [*DOCUMENTS, LONG],
        "long_document": len(DOCUMENTS),
        "variants": {
            name: build(name, options, seed)
            for seed, (name, options) in enumerate(VARIANTS.items())
        },
        "config_variants": {name: config_variant(*spec) for name, spec in CONFIG_VARIANTS.items()},
    }
    (OUT / "pylate_scores.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["versions"]))


if __name__ == "__main__":
    main()
