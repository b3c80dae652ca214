"""The model card (`README.md`) of a trained cross-encoder.

It records what is needed to trust and reproduce the model: the training data manifest
(files, sha256, counts), every parameter, the exact command line, the dev metrics of
the first stage alone and of each evaluation, and how to load the model.

sentence-transformers writes its own card into each checkpoint; it knows neither the
data files and their hashes nor the first-stage baseline, so the published model at
`OUT/` carries this one instead.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from shortlist.train.config import Prepared, TrainConfig, TrainResult

CARD = "README.md"
MANIFEST = "training.json"


def card_data(config: TrainConfig, prep: Prepared, result: TrainResult) -> dict[str, Any]:
    """The card's facts as JSON (also written to `training.json` beside the card)."""
    import sentence_transformers
    import torch
    import transformers

    from shortlist.train.evaluation import DEV_METRICS

    data: dict[str, Any] = {
        "command_line": config.command_line,
        "parameters": config.to_dict(),
        "train": {
            "name": prep.train.name,
            "sources": [vars(s) for s in prep.train.sources],
            "counts": {**prep.train.counts(), "groups": result.num_groups},
        },
        "dev": None,
        "steps": result.steps,
        "best_step": result.best_step,
        "selection_metric": DEV_METRICS[0] if prep.dev is not None else None,
        "loss": {
            "first": result.losses[0] if result.losses else None,
            "last": result.losses[-1] if result.losses else None,
            "mean_first_10": _mean(result.losses[:10]),
            "mean_last_10": _mean(result.losses[-10:]),
        },
        "evals": {str(k): dict(v) for k, v in sorted(result.evals.items())},
        "onnx_int8": str(result.onnx_int8.relative_to(result.out)) if result.onnx_int8 else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
    }
    if prep.dev_pairs is not None and prep.dev is not None:
        data["dev"] = {
            "sources": [vars(s) for s in prep.dev_pairs.sources],
            "counts": prep.dev_pairs.counts(),
            "evaluated_queries": len(prep.dev.queries),
            "first_stage": dict(prep.dev_first_stage or {}),
        }
    return data


def _mean(xs: tuple[float, ...]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def render_card(data: dict[str, Any]) -> str:
    """Markdown for `data` (from `card_data`)."""
    p = data["parameters"]
    out = p["out"]
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [cross-encoder, reranker, shortlist]",
        "---",
        "",
        f"# Cross-encoder reranker fine-tuned from `{p['init'] or 'all-MiniLM-L6-v2'}`",
        "",
        "A 1-label sequence classifier: its logit is the relevance of a (query, passage) "
        "pair. Trained with `shortlist train-reranker` on groups of one positive and "
        f"{p['negatives_bm25']} BM25 + {p['negatives_dense']} dense hard negatives "
        f"mined by shortlist's first stage, loss `{p['loss']}`"
        + (f" distilled from `{p['teacher']}`" if p["teacher"] else "")
        + ".",
        "",
        "## Use",
        "",
        "```python",
        "import shortlist",
        f'reranker = shortlist.load_reranker("cross-encoder:{out}")',
        f'int8 = shortlist.load_reranker("cross-encoder:{out}?backend=onnx-int8")',
        "```",
        "",
    ]
    if data["onnx_int8"]:
        lines += [f"The int8 ONNX model is shipped at `{data['onnx_int8']}`.", ""]
    lines += ["## Command", "", "```", data["command_line"] or "(Python API)", "```", ""]
    lines += ["## Training data", "", "| role | file | sha256 |", "|---|---|---|"]
    for s in data["train"]["sources"]:
        lines.append(f"| {s['role']} | `{s['path']}` | `{s['sha256']}` |")
    counts = data["train"]["counts"]
    lines += ["", "Counts: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".", ""]
    dev = data["dev"]
    lines += ["## Dev evaluation", ""]
    if dev is None:
        lines += ["No dev set was given; the model is the last step's weights.", ""]
    else:
        lines += ["| role | file | sha256 |", "|---|---|---|"]
        for s in dev["sources"]:
            lines.append(f"| {s['role']} | `{s['path']}` | `{s['sha256']}` |")
        metrics = list(dev["first_stage"])
        lines += [
            "",
            f"{dev['evaluated_queries']} dev queries; each reranks its top "
            f"{p['eval_depth']} first-stage candidates. The model kept is step "
            f"{data['best_step']} (best {data['selection_metric']}).",
            "",
            "| step | " + " | ".join(metrics) + " |",
            "|---|" + "---|" * len(metrics),
            "| first stage | " + " | ".join(f"{dev['first_stage'][m]:.4f}" for m in metrics) + " |",
        ]
        for step, values in data["evals"].items():
            mark = " (kept)" if int(step) == data["best_step"] else ""
            row = " | ".join(f"{values[m]:.4f}" for m in metrics)
            lines.append(f"| {step}{mark} | {row} |")
        lines.append("")
    loss = data["loss"]
    if loss["mean_first_10"] is not None:
        lines += [
            "## Loss",
            "",
            f"{data['steps']} optimizer steps; mean loss over the first 10 steps "
            f"{loss['mean_first_10']:.4f}, over the last 10 {loss['mean_last_10']:.4f}.",
            "",
        ]
    lines += [
        "## Parameters",
        "",
        "```json",
        json.dumps(p, indent=2, sort_keys=True),
        "```",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def write_card(out: Path, config: TrainConfig, prep: Prepared, result: TrainResult) -> Path:
    """Write `README.md` and `training.json` into `out` (each via a rename)."""
    data = card_data(config, prep, result)
    for name, text in (
        (MANIFEST, json.dumps(data, indent=2, sort_keys=True) + "\n"),
        (CARD, render_card(data)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)
    return out / CARD
