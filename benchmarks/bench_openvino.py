"""OpenVINO fp32/int8 vs torch fp32 and sentence-transformers on a MiniLM-L6-shaped cross-encoder.

The model has MiniLM-L6's shape (6 layers, hidden 384, 12 heads, bert-base-uncased
vocabulary) with random weights: speed does not depend on the weights, and nothing is
downloaded. The tokenizer is the offline default model's (same vocabulary). Input: 50
(query, passage) pairs of real news text, about 220 tokens each. Every runner is timed
in the same process on the same threads; the report gives medians and ratios.

    python benchmarks/bench_openvino.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=50)
    args = parser.parse_args()

    import torch
    import transformers
    from sentence_transformers import CrossEncoder

    from shortlist.retrieve.encoder import default_model_path
    from shortlist.runtime.openvino import OpenVINOBackend, default_calibration_pairs

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="shortlist-bench-"))
    try:
        model_dir = work / "minilm-l6-shaped"
        src = Path(default_model_path())
        tokenizer = transformers.AutoTokenizer.from_pretrained(src)
        tokenizer.save_pretrained(model_dir)
        torch.manual_seed(0)
        config = transformers.BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=384,
            num_hidden_layers=6,
            num_attention_heads=12,
            intermediate_size=1536,
            num_labels=1,
        )
        model = transformers.BertForSequenceClassification(config).eval()
        model.save_pretrained(model_dir)

        calib = default_calibration_pairs()
        pairs = calib[: 2 * args.pairs : 2]  # query with its own article
        enc = tokenizer(
            [q for q, _ in pairs], [p for _, p in pairs], padding=True, truncation="only_second",
            max_length=512, return_tensors="np",
        )
        lengths = enc["attention_mask"].sum(axis=1)
        print(f"{len(pairs)} pairs, tokens/pair mean {lengths.mean():.0f} "
              f"(min {lengths.min()}, max {lengths.max()}), threads {args.threads}")

        tenc = {k: torch.as_tensor(v) for k, v in enc.items()}

        def run_torch() -> object:
            with torch.inference_mode():
                return model(**tenc).logits

        st = CrossEncoder(str(model_dir), num_labels=1, max_length=512, device="cpu")

        def run_st() -> object:
            return st.predict(pairs, show_progress_bar=False)

        t0 = time.perf_counter()
        fp32 = OpenVINOBackend(model_dir, num_threads=args.threads, cache_dir=work / "cache")
        t1 = time.perf_counter()
        int8 = OpenVINOBackend(
            model_dir, int8=True, num_threads=args.threads, cache_dir=work / "cache"
        )
        t2 = time.perf_counter()
        print(f"convert fp32 {t1 - t0:.1f} s, convert+calibrate int8 {t2 - t1:.1f} s "
              f"({len(calib)} pairs)")
        feed = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])

        ref = run_torch().numpy()[:, 0]  # type: ignore[attr-defined]
        diff = np.abs(fp32.run(*feed)[:, 0] - ref).max()
        print(f"openvino fp32 vs torch max |diff| {diff:.2e}")

        results = {
            "sentence-transformers fp32": _median_s(run_st, args.repeats),
            "torch fp32": _median_s(run_torch, args.repeats),
            "openvino fp32": _median_s(lambda: fp32.run(*feed), args.repeats),
            "openvino int8": _median_s(lambda: int8.run(*feed), args.repeats),
        }
        base = results["sentence-transformers fp32"]
        for name, secs in results.items():
            print(f"{name:<28} {secs:7.3f} s   {base / secs:5.2f}x vs sentence-transformers")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
