"""Inputs and outputs of the engine: NumPy arrays and torch tensors, without copies.

The engine views a float32, C-contiguous CPU array in place and hands back arrays over its own
memory (see python/src/vvae_module.cpp). What is checked here is what can be told from the
object alone, with the fix in the message; the C++ side checks the same again for any other
object that exports DLPack or the buffer protocol.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger("vvae")


def is_torch(x) -> bool:
    module = type(x).__module__ or ""
    return module == "torch" or module.startswith("torch.")


def check_array(x, name: str, ranks=(5,)):
    """Returns x as the engine takes it, or raises TypeError / ValueError saying why it cannot.

    A torch tensor that requires grad is detached (a view: vvae computes no gradients).
    """
    if is_torch(x):
        import torch

        if x.requires_grad:
            x = x.detach()
        if x.dtype != torch.float32:
            raise TypeError(f"{name} must be float32, got {x.dtype} (convert it with .float())")
        if x.device.type != "cpu":
            raise ValueError(f"{name} is on {x.device}; vvae computes on the CPU (use .cpu())")
        if x.layout != torch.strided:
            raise TypeError(f"{name} must be a dense tensor, got layout {x.layout}")
        if x.ndim not in ranks:
            raise ValueError(f"{name} must have {_ranks(ranks)}, got shape {tuple(x.shape)}")
        if not x.is_contiguous():
            raise ValueError(
                f"{name} {tuple(x.shape)} must be contiguous; make it so with .contiguous()"
            )
        return x
    if isinstance(x, np.ndarray):
        if x.dtype != np.float32:
            raise TypeError(
                f"{name} must be float32, got {x.dtype} (convert it with .astype(numpy.float32))"
            )
        if x.ndim not in ranks:
            raise ValueError(f"{name} must have {_ranks(ranks)}, got shape {x.shape}")
        if not x.flags.c_contiguous:
            raise ValueError(
                f"{name} {x.shape} must be C-contiguous; make it so with numpy.ascontiguousarray()"
            )
        return x
    if hasattr(x, "__dlpack__") or hasattr(x, "__array_interface__"):
        return x  # the C++ side checks it
    raise TypeError(f"{name} must be a float32 NumPy array or torch tensor, got {type(x).__name__}")


def _ranks(ranks) -> str:
    names = {4: "4 dimensions (B, C, H, W)", 5: "5 dimensions (B, C, T, H, W)"}
    return " or ".join(names.get(r, f"{r} dimensions") for r in ranks)


def add_time(x):
    """(B, C, H, W) -> (B, C, 1, H, W), a view."""
    return x.unsqueeze(2) if is_torch(x) else x[:, :, np.newaxis]


def drop_time(x):
    """(B, C, 1, H, W) -> (B, C, H, W), a view."""
    return x if x is None else (x.squeeze(2) if is_torch(x) else x[:, :, 0])


def like(x, reference):
    """x (NumPy or torch) as the framework of `reference`, sharing memory where it can."""
    if is_torch(reference) == is_torch(x):
        return x
    if is_torch(reference):
        import torch

        return torch.from_numpy(np.ascontiguousarray(x))
    return x.numpy()


def warn_non_finite(x, what: str) -> None:
    """The engine computes what it is given; a model that overflowed says so in the log."""
    if x is None:
        return
    if is_torch(x):
        import torch

        bad, total = int((~torch.isfinite(x)).sum()), x.numel()
    else:
        bad, total = int(np.count_nonzero(~np.isfinite(x))), x.size
    if bad:
        logger.warning("%s holds %d NaN or infinite values (of %d)", what, bad, total)
