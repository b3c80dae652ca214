"""Training speed and dev nDCG@10: the hand-written loop of commit c6f6472 ("old")
against sentence-transformers' CrossEncoderTrainer ("new"), same data, same steps.

Run (the old code is measured from a checkout of its commit, nothing is vendored):

    git worktree add /tmp/oldtrain c6f6472
    PYTHONPATH=src python benchmarks/train_speed.py --old-src /tmp/oldtrain/src
    PYTHONPATH=src python benchmarks/train_speed.py --old-src /tmp/oldtrain/src \\
        --init minilm --steps 6 --max-length 128
    git worktree remove --force /tmp/oldtrain

Data: synthetic (query, positive) pairs over the tiny test vocabulary (`tests/models.py`),
60 for training and 20 held out as the dev set, plus 400 random passages as the negative
pool; BM25 negatives only. `--init tiny` is the random-weight test BERT (what the test
suite trains), `--init minilm` the offline all-MiniLM-L6-v2 with a new head.

Each side runs `shortlist train-reranker` in a subprocess with its own sources first on
PYTHONPATH, sharing one work dir (index and mined groups are the same for both and are
built by a warm-up run first). Steps per second are steps divided by the time between
the CLI's "step 0: dev" status line (the untrained model's evaluation, just before the
first step) and its "step N: dev" line (just after the last step and that step's dev
evaluation, the same work on both sides): imports, model loading, indexing and the
model card are left out. Prints one line per side and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from models import WORDS, build_tiny_encoder, corpus  # noqa: E402


def pairs(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    content, fillers = WORDS[20:], WORDS[:20]
    out = []
    for i in range(n):
        topic = rng.sample(content, 3)
        words = topic + [rng.choice(fillers) for _ in range(5)]
        rng.shuffle(words)
        out.append({"id": f"s{seed}-q{i}", "query": " ".join(topic), "positive": " ".join(words)})
    return out


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def train(src: Path, argv: list[str], threads: int) -> tuple[float, float, dict]:
    """Run the CLI; return (total wall, seconds from the step-0 dev line to the last
    step's dev line, the run's training.json)."""
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-c", "from shortlist.cli import main; main()", "train-reranker"]
    steps = argv[argv.index("--max-steps") + 1]
    start = time.perf_counter()
    seen: dict[str, float] = {}
    lines = []
    with subprocess.Popen(
        cmd + argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:  # status lines arrive as they are written (line-buffered)
            lines.append(line)
            for step in ("0", steps):
                if line.startswith(f"step {step}: dev"):
                    seen.setdefault(step, time.perf_counter())
    wall = time.perf_counter() - start
    if proc.returncode != 0 or len(seen) < 2:
        raise SystemExit(f"{src}: train-reranker failed\n{''.join(lines)[-3000:]}")
    out = Path(argv[argv.index("--out") + 1])
    manifest = json.loads((out / "training.json").read_text(encoding="utf-8"))
    return wall, seen[steps] - seen["0"], manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", type=Path, required=True, help="src/ of a c6f6472 checkout")
    parser.add_argument("--new-src", type=Path, default=ROOT / "src")
    parser.add_argument("--init", choices=("tiny", "minilm"), default="tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--batch-groups", type=int, default=4)
    parser.add_argument("--negatives", type=int, default=7)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        root = Path(tmp)
        train_file = write_jsonl(root / "train.jsonl", pairs(60, seed=1))
        dev_file = write_jsonl(root / "dev.jsonl", pairs(20, seed=2))
        pool = [{"id": f"c{i}", "text": t} for i, t in enumerate(corpus(400))]
        corpus_file = write_jsonl(root / "corpus.jsonl", pool)
        init = []
        if opts.init == "tiny":
            init = ["--init", str(build_tiny_encoder(root / "tiny"))]
        common = [
            str(train_file), "--dev", str(dev_file), "--corpus", str(corpus_file), *init,
            "--no-dense-negatives", "--negatives-bm25", str(opts.negatives),
            "--max-length", str(opts.max_length), "--batch-groups", str(opts.batch_groups),
            "--lr", str(opts.lr), "--eval-every", "0", "--save-every", "0", "--no-onnx",
            "--work-dir", str(root / "work"),
        ]  # fmt: skip
        train(opts.new_src, [*common, "--out", str(root / "warm"), "--max-steps", "1"], 1)
        results = {}
        for name, src in (("old", opts.old_src), ("new", opts.new_src)):
            wall, loop_s, manifest = train(
                src,
                [*common, "--out", str(root / name), "--max-steps", str(opts.steps)],
                opts.threads,
            )
            evals = manifest["evals"]
            final = evals[str(manifest["steps"])]["ndcg@10"]
            results[name] = {
                "steps_per_s": opts.steps / loop_s,
                "loop_s": loop_s,
                "wall_s": wall,
                "dev_ndcg@10_step0": evals["0"]["ndcg@10"],
                "dev_ndcg@10_final": final,
                "loss_mean_last_10": manifest["loss"]["mean_last_10"],
            }
            r = results[name]
            print(
                f"{name}: {r['steps_per_s']:.2f} steps/s  dev nDCG@10 {r['dev_ndcg@10_step0']:.4f}"
                f" -> {final:.4f}  (loop {loop_s:.1f} s, whole command {wall:.1f} s)"
            )
        summary = {"init": opts.init, "steps": opts.steps, **vars(opts), "results": results}
        summary["old_src"], summary["new_src"] = str(opts.old_src), str(opts.new_src)
        print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
