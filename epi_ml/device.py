"""Which torch device to train and predict on: CUDA when present, else CPU (one code path)."""

from __future__ import annotations

import torch


def select_device(preference: str = "auto") -> torch.device:
    """`auto` -> cuda when available else cpu; `cpu`, `cuda`, `cuda:1` are taken as given."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"EPI_ML_DEVICE={preference!r} but torch sees no CUDA device "
            f"(torch {torch.__version__}); use EPI_ML_DEVICE=auto or cpu"
        )
    return device


def describe_device(device: torch.device) -> str:
    """Human name of a device: the GPU model for CUDA, `cpu (N threads)` otherwise."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_name(index)
    return f"cpu ({torch.get_num_threads()} threads)"
