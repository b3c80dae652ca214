"""Training checkpoints: `OUT/checkpoints/step-N`, written atomically.

A checkpoint holds the model and tokenizer (`save_pretrained`), and in
``trainer_state.pt`` the optimizer, the scheduler, the step, the loss history, the
evaluations so far and the random number generators' states (torch CPU and CUDA,
numpy, random), so a resumed run continues exactly where the saved one stopped.
It is written into a temporary folder beside its final place and renamed into it.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._fs import replace_dir

STATE_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoints_dir(out: Path) -> Path:
    return out / "checkpoints"


def rng_state() -> dict[str, Any]:
    """The global RNG states training uses (dropout draws from torch's)."""
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).copy()), pos, has_gauss, cached],
        "random": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    out: Path, step: int, model: Any, tokenizer: Any, state: Mapping[str, Any]
) -> Path:
    """Write `OUT/checkpoints/step-<step>` atomically and return it."""
    import torch

    def build(folder: Path) -> None:
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        torch.save(dict(state), folder / STATE_FILE)

    return replace_dir(checkpoints_dir(out) / f"step-{step}", build)


def list_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first (temporary folders are never listed)."""
    root = checkpoints_dir(out)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(out: Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1][1] if found else None


def load_state(path: Path) -> dict[str, Any]:
    """The trainer state saved with a checkpoint."""
    import torch

    state: dict[str, Any] = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    return state


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for _, path in list_checkpoints(out)[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
