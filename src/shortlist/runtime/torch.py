"""PyTorch backends: `torch` (fp32) and `torch-int8` (dynamic int8 Linear layers).

`num_threads`, when given, calls `torch.set_num_threads`, which is process-wide in
PyTorch: every torch model in the process is affected. Left as None, torch's own
default applies.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from shortlist.errors import ModelLoadError
from shortlist.runtime import MODEL_INPUTS, BackendOptions, model_feed


class TorchBackend:
    """Runs a `transformers` sequence-classification model under `torch.inference_mode`."""

    def __init__(self, model: Any, device: str) -> None:
        self._model = model
        self._device = device
        accepted = inspect.signature(model.forward).parameters
        self.input_names = tuple(n for n in MODEL_INPUTS if n in accepted)

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None,
    ) -> np.ndarray:
        import torch

        feed = model_feed(self.input_names, input_ids, attention_mask, token_type_ids)
        with torch.inference_mode():
            out = self._model(
                **{name: torch.from_numpy(array).to(self._device) for name, array in feed.items()}
            )
        return np.asarray(out.logits.float().cpu().numpy(), dtype=np.float32)


def load_model(options: BackendOptions) -> Any:
    """The fp32 `AutoModelForSequenceClassification` in eval mode, or `ModelLoadError`."""
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(options.model_path), dtype="float32"
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load a sequence-classification model from {options.model_path}: {exc}"
        ) from exc
    return model.eval()


def _set_threads(options: BackendOptions) -> None:
    if options.num_threads is not None:
        import torch

        torch.set_num_threads(options.num_threads)


def load_fp32(options: BackendOptions) -> TorchBackend:
    _set_threads(options)
    device = options.device or "cpu"
    return TorchBackend(load_model(options).to(device), device)


def load_int8(options: BackendOptions) -> TorchBackend:
    """fp32 model with every `nn.Linear` swapped for a dynamically quantized int8 one.

    Uses `torch.ao.quantization.quantize_dynamic` (weights int8 per tensor, activations
    quantized per batch at run time). CPU only. PyTorch marks `torch.ao.quantization`
    deprecated in favour of torchao; it still works in the pinned torch.
    """
    import torch

    if options.device not in (None, "cpu"):
        raise ModelLoadError("the torch-int8 backend runs on CPU only; use device='cpu'")
    _set_threads(options)
    model = load_model(options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        qmodel = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return TorchBackend(qmodel, "cpu")
