"""LLM-reranker latency: shortlist's `llm-reranker` against sentence-transformers, one run.

Scores one query against 50 real passages (the 50 Lee news articles, gensim's
`lee.cor`, about 110-250 tokens each) with a random-weight Qwen3ForCausalLM of a
CPU-sized shape (default 4 layers, hidden 512, 8 heads / 4 KV heads, Qwen3's real
151,936-token vocabulary) under the Qwen3-Reranker recipe. The tokenizer is a byte-level
BPE with Qwen's pre-tokenizer, trained here on the 300 Lee background articles.

sentence-transformers' `CrossEncoder` (Transformer text-generation + LogitScore, the
folder given a chat template that renders the same prompt) runs in the same process on
the same model; the largest raw-score difference between the two is printed.

Reports wall-clock p50/p95 and CPU-time p50 over `--repeats` interleaved rounds of:
sentence-transformers (best of batch sizes 16 and 32), shortlist fp32 with and without
prefix reuse (the reuse speedup), bf16 and int8, with each lower precision's Spearman
rank agreement with fp32 scores.

    PYTHONPATH=src python benchmarks/llm_rerank_latency.py --threads 2 --repeats 5
    PYTHONPATH=src python benchmarks/llm_rerank_latency.py --layers 28 --hidden 1024 \\
        --heads 16 --kv-heads 8 --intermediate 3072 --device cuda   # Qwen3-Reranker-0.6B shape
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

QUERY = "Which party leader was replaced after a conflict with the senators?"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def lee_articles() -> tuple[list[str], list[str]]:
    """The 50 Lee articles and the 300 background articles (gensim's test data)."""
    from shortlist_datasets.lee import gensim_test_data

    folder = gensim_test_data()
    read = lambda name: [  # noqa: E731
        line.strip() for line in (folder / name).read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    return read("lee.cor"), read("lee_background.cor")


def build_model(folder: Path, args: argparse.Namespace, background: list[str]) -> None:
    import torch
    import transformers as tf
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=8000, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    prompt_words = ["yes", "no", '"yes" or "no"', "Judge whether the Document meets the "
                    "requirements based on the Query and the Instruct provided"] * 20
    tok.train_from_iterator(background + prompt_words, trainer=trainer)
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>",
        model_max_length=40960,
    )
    fast.save_pretrained(str(folder))
    config = tf.Qwen3Config(
        vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        head_dim=args.hidden // args.heads, intermediate_size=args.intermediate,
        max_position_embeddings=40960, tie_word_embeddings=True,
        pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id,
    )
    torch.manual_seed(0)
    tf.Qwen3ForCausalLM(config).save_pretrained(str(folder))


def run_interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Each variant once to warm up, then `repeats` rounds of every variant in turn, so a
    contended machine slows all of them alike. Wall-clock p50/p95 and the p50 of process
    CPU time (which contention from other processes does not inflate)."""
    outs = {label: fn() for label, fn in fns.items()}
    wall: dict[str, list[float]] = {label: [] for label in fns}
    cpu: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            outs[label] = fn()
            wall[label].append((time.perf_counter() - start) * 1000.0)
            cpu[label].append((time.process_time() - start_cpu) * 1000.0)
    rows = {}
    for label in fns:
        ordered = sorted(wall[label])
        rows[label] = {
            "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            "cpu_p50_ms": statistics.median(cpu[label]),
        }
    return rows, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore

    from shortlist.rerank.llm_reranker import RECIPES, LLMReranker

    torch.set_num_threads(args.threads)
    articles, background = lee_articles()
    passages = articles[:50]
    pairs = [(QUERY, p) for p in passages]
    results: dict[str, Any] = {"shape": vars(args), "passages": len(passages)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "qwen3-cpu"
        build_model(folder, args, background)
        (folder / "chat_template.jinja").write_text(RECIPES["qwen3-reranker"].chat_template())

        def ours(**kw: Any) -> LLMReranker:
            return LLMReranker(str(folder), device=args.device, **kw)

        fp32 = ours(dtype="float32")
        plan = fp32.plan(QUERY, passages)
        results["mean_tokens_per_pair"] = float(np.mean(plan.tokens))
        results["prefix_tokens"] = len(plan.units[0].prefix)
        true_id, false_id = fp32.answer_token_ids
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = CrossEncoder(
                modules=[Transformer(str(folder), transformer_task="text-generation"),
                         LogitScore(true_id, false_id)],
                activation_fn=torch.nn.Identity(), device=args.device,
            )
        fns: dict[str, Callable[[], Any]] = {
            f"sentence-transformers (batch {b})": (lambda b=b: st.predict(pairs, batch_size=b))
            for b in (16, 32)
        }
        variants = {
            "shortlist fp32, prefix reuse": fp32,
            "shortlist fp32, no prefix reuse": ours(dtype="float32", prefix_reuse=False),
            "shortlist bf16, prefix reuse": ours(dtype="bfloat16"),
        }
        if args.device == "cpu":
            variants["shortlist int8 (MLPs), prefix reuse"] = ours(dtype="int8")
        for label, reranker in variants.items():
            fns[label] = lambda r=reranker: r.score_pairs(pairs)
        rows, outs = run_interleaved(fns, args.repeats)
        scores = {label: np.asarray(out, dtype=np.float64) for label, out in outs.items()}
        scores["st"] = scores["sentence-transformers (batch 16)"]
    reference = scores["shortlist fp32, prefix reuse"]
    results["max_abs_diff_vs_sentence_transformers"] = float(np.abs(reference - scores["st"]).max())
    results["spearman_vs_fp32"] = {
        label: float(spearmanr(reference, s).statistic)
        for label, s in scores.items() if "bf16" in label or "int8" in label
    }
    st_rows = [v for k, v in rows.items() if k.startswith("sentence")]
    st_best = min(v["p50_ms"] for v in st_rows)
    st_best_cpu = min(v["cpu_p50_ms"] for v in st_rows)
    results["rows"] = rows
    results["speedup_vs_sentence_transformers"] = {
        k: st_best / v["p50_ms"] for k, v in rows.items() if k.startswith("shortlist")
    }
    results["cpu_speedup_vs_sentence_transformers"] = {
        k: st_best_cpu / v["cpu_p50_ms"] for k, v in rows.items() if k.startswith("shortlist")
    }
    reuse, no_reuse = rows["shortlist fp32, prefix reuse"], rows["shortlist fp32, no prefix reuse"]
    results["prefix_reuse_speedup"] = no_reuse["p50_ms"] / reuse["p50_ms"]
    results["prefix_reuse_cpu_speedup"] = no_reuse["cpu_p50_ms"] / reuse["cpu_p50_ms"]
    print(f"{len(passages)} Lee passages, mean {results['mean_tokens_per_pair']:.0f} tokens per "
          f"pair ({results['prefix_tokens']} of them the shared prefix), threads={args.threads}")
    print("x vs ST: the best sentence-transformers batch size's p50 over this variant's")
    print(f"{'variant':<40} {'p50 ms':>9} {'p95 ms':>9} {'CPU ms':>9} {'x vs ST':>8} {'(CPU)':>6}")
    for label, row in rows.items():
        ratio = results["speedup_vs_sentence_transformers"].get(label)
        cpu_ratio = results["cpu_speedup_vs_sentence_transformers"].get(label)
        shown = f"{ratio:8.2f} {cpu_ratio:6.2f}" if ratio and cpu_ratio else ""
        print(f"{label:<40} {row['p50_ms']:9.1f} {row['p95_ms']:9.1f} "
              f"{row['cpu_p50_ms']:9.1f} {shown}")
    print(f"prefix-reuse speedup (fp32): {results['prefix_reuse_speedup']:.2f}x wall, "
          f"{results['prefix_reuse_cpu_speedup']:.2f}x CPU")
    print(f"max |shortlist - sentence-transformers| raw score: "
          f"{results['max_abs_diff_vs_sentence_transformers']:.2e}")
    for label, rho in results["spearman_vs_fp32"].items():
        print(f"Spearman vs fp32, {label}: {rho:.4f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
