"""Builders of tiny random-weight cross-encoders (model + fast tokenizer) for tests.

Everything is created from configs in a folder the caller gives; nothing is downloaded.
BERT, ELECTRA and ModernBERT get a tiny WordPiece tokenizer; XLM-R and DeBERTa-v2 get
a Unigram (sentencepiece-style, Metaspace) tokenizer trained on a small word list, so
both tokenizer families' offsets go through the window code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

WORDS = (
    "the a of and to in is for on with as by at from it this that be are was or an "
    "python module function class return value list dict string file path error "
    "index query passage document rerank score model token batch window search "
    "cat dog bird fish tree river mountain city car train music paint bread apple "
    "red green blue fast slow big small old new open close read write sort find"
).split()

ARCHITECTURES = ("bert", "xlm-roberta", "electra", "deberta-v2", "modernbert")


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


def _wordpiece(folder: Path, with_token_types: bool) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-_/"
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab_list += list(letters) + [f"##{c}" for c in letters]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    names = ["input_ids", "token_type_ids", "attention_mask"]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        cls_token="[CLS]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=512,
        model_input_names=names
        if with_token_types
        else [n for n in names if n != "token_type_ids"],
    )
    fast.save_pretrained(str(folder))
    return fast


def _unigram(folder: Path, style: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if style == "xlm-roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        cls, pad, sep, unk, mask = specials
    else:
        specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
        pad, cls, sep, unk, mask = specials
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=specials, unk_token=unk, show_progress=False
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    ids = {t: tok.token_to_id(t) for t in specials}
    if style == "xlm-roberta":
        pair = f"{cls} $A {sep} {sep} $B {sep}"
        names = ["input_ids", "attention_mask"]
    else:
        pair = f"{cls} $A:0 {sep}:0 $B:1 {sep}:1"
        names = ["input_ids", "token_type_ids", "attention_mask"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=pair,
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=unk,
        sep_token=sep,
        cls_token=cls,
        pad_token=pad,
        mask_token=mask,
        bos_token=cls,
        eos_token=sep,
        model_max_length=512,
        model_input_names=names,
    )
    fast.save_pretrained(str(folder))
    return fast


def build_tiny_cross_encoder(
    folder: Path, architecture: str, num_labels: int = 1, *, seed: int = 0, max_positions: int = 128
) -> Path:
    """Save a random-weight `architecture` classifier with `num_labels` and its tokenizer."""
    import torch
    import transformers as tf

    folder.mkdir(parents=True, exist_ok=True)
    if architecture in ("bert", "electra", "modernbert"):
        tokenizer = _wordpiece(folder, with_token_types=architecture != "modernbert")
    else:
        tokenizer = _unigram(folder, architecture)
    vocab = len(tokenizer)
    common: dict[str, Any] = dict(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    if architecture == "bert":
        config: Any = tf.BertConfig(max_position_embeddings=max_positions, **common)
    elif architecture == "electra":
        config = tf.ElectraConfig(
            embedding_size=16, max_position_embeddings=max_positions, **common
        )
    elif architecture == "xlm-roberta":
        config = tf.XLMRobertaConfig(
            max_position_embeddings=max_positions + 2,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            **common,
        )
    elif architecture == "deberta-v2":
        config = tf.DebertaV2Config(
            max_position_embeddings=max_positions,
            relative_attention=True,
            position_buckets=16,
            pos_att_type=["p2c", "c2p"],
            **common,
        )
    elif architecture == "modernbert":
        config = tf.ModernBertConfig(
            max_position_embeddings=max_positions,
            global_attn_every_n_layers=2,
            local_attention=16,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            **common,
        )
    else:
        raise ValueError(f"unknown architecture {architecture!r}")
    torch.manual_seed(seed)
    model = tf.AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(str(folder))
    return folder


def build_tiny_encoder(folder: Path, *, seed: int = 0, max_positions: int = 128) -> Path:
    """Save a random-weight `BertModel` (no classification head) and its tokenizer,
    the shape of a sentence-transformers folder a reranker is fine-tuned from."""
    import torch
    import transformers as tf

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _wordpiece(folder, with_token_types=True)
    config = tf.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    tf.BertModel(config).save_pretrained(str(folder))
    return folder



_ST_MODULE = "sentence_transformers.models."


def build_tiny_sentence_transformer(
    folder: Path, *, pooling: str = "mean", seed: int = 0, extra_module: str | None = None
) -> Path:
    """A random-weight BERT bi-encoder saved as a sentence-transformers folder:
    Transformer + Pooling (`pooling`: mean, cls or max) + Normalize, plus `extra_module`
    (e.g. "Dense") listed in modules.json when given."""
    import json

    build_tiny_encoder(folder, seed=seed)
    kinds = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    if extra_module is not None:
        kinds.append(("3_Extra", extra_module))
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": _ST_MODULE + kind}
        for i, (path, kind) in enumerate(kinds)
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    pool_config = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool_config))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 64, "do_lower_case": False})
    )
    return folder


# ---- tiny causal-LM rerankers -------------------------------------------------------

CAUSAL_ARCHITECTURES = ("qwen3", "qwen2", "gemma", "gemma2")
_CAUSAL_SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>", "<|im_start|>", "<|im_end|>",
                    "<think>", "</think>")


def _causal_vocab() -> list[str]:
    """Every word of every registered prompt, the test word list (both cases), the answer
    tokens and single characters; anything else becomes <unk>."""
    import re

    from shortlist.rerank.llm_reranker import RECIPES

    texts = [s for r in RECIPES.values() for s in r.segments]
    texts += [r.default_instruction or "" for r in RECIPES.values()]
    texts += [" ".join(WORDS), " ".join(WORDS).title(), "yes no Yes No 0 1 true false"]
    texts += ["solar panels store energy batteries roman empire recipe banana bread walnuts "
              "lithium history centuries storage power roof day night lights cells"]
    words = [w for t in texts for w in re.findall(r"\w+|[^\w\s]", t)]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-_/<>|{}[]")
    return list(dict.fromkeys([*_CAUSAL_SPECIALS, *words, *chars]))


def build_causal_tokenizer(folder: Path) -> Any:
    """A word-level fast tokenizer that splits on whitespace and isolates punctuation,
    with the chat-template special tokens, "yes"/"no"/"Yes"/"1"/"0", and a BOS token.
    Splitting a text at whitespace, punctuation or a special token never changes its
    tokens, as for the byte-level BPE of Qwen/Gemma at the points the recipes cut."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(_causal_vocab())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in _CAUSAL_SPECIALS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        model_max_length=1 << 20,
    )
    fast.save_pretrained(str(folder))
    return fast


_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_byte_level_tokenizer(folder: Path) -> Any:
    """A byte-level BPE tokenizer with Qwen2's pre-tokenizer pattern, trained on the prompt
    words, so transformers' `Qwen2Tokenizer` (which AutoTokenizer insists on for a qwen2
    config) rebuilds it faithfully. Here cutting a text into segments CAN change tokens,
    as with the real Qwen vocabulary, so the recipes' segment boundaries are put to the test.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=list(_CAUSAL_SPECIALS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    words = [w for w in _causal_vocab() if w not in _CAUSAL_SPECIALS]
    lines = [" ".join(words), "\n".join(words), "yes no 1 0 Yes No", '"yes" "no"'] * 20
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=None, pad_token="<pad>", bos_token="<bos>",
        eos_token="<eos>", model_max_length=1 << 20,
    )
    fast.save_pretrained(str(folder))
    return fast


def build_tiny_causal_lm(
    folder: Path, architecture: str, *, seed: int = 0, max_positions: int = 256,
    hidden: int = 32, layers: int = 2, init_std: float = 0.2,
) -> Path:
    """Save a random-weight `architecture` (qwen3, qwen2, gemma, gemma2) causal LM and
    the word-level tokenizer above. `init_std` is large enough that answer logits differ
    by whole units between pairs (the default 0.02 gives near-ties)."""
    import torch
    import transformers as tf

    folder.mkdir(parents=True, exist_ok=True)
    if architecture == "qwen2":
        tokenizer = build_byte_level_tokenizer(folder)
    else:
        tokenizer = build_causal_tokenizer(folder)
    common: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_positions,
        initializer_range=init_std,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    configs = {
        "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM, {}),
        "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, {}),
        "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, {}),
        "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM, {"sliding_window": max_positions}),
    }
    if architecture not in configs:
        raise ValueError(f"unknown architecture {architecture!r}")
    config_cls, model_cls, extra = configs[architecture]
    if architecture == "qwen2":
        common.pop("head_dim")
    config = config_cls(**common, **extra)
    torch.manual_seed(seed)
    model = model_cls(config)
    model.save_pretrained(str(folder))
    return folder
