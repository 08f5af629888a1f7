"""Which device and precision linkviz computes with: auto-selection, reduced precision, a deterministic mode.

- :func:`resolve_device` turns ``"auto"`` (or None) into the best device present (CUDA, then Apple's MPS, then
  the CPU) and checks that an explicitly named accelerator exists, with a message saying what to do.
- :func:`precision_context` runs a block in reduced precision (``"bfloat16"``/``"float16"`` autocast) or in
  float32. Reduced precision pays on GPUs; on CPUs without bfloat16 instructions it is many times *slower*
  (the toy generator: 139 s vs 2.5 s for 40 images on this project's 2-core machines), so float32 stays the
  default everywhere.
- :func:`deterministic` makes a block bit-reproducible run to run on one machine (deterministic algorithms,
  no cuDNN autotuning, a fixed seed), for figures whose bytes must not change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["Precision", "best_device", "deterministic", "placement", "precision_context", "resolve_device",
           "run_device"]

Precision = Literal["float32", "bfloat16", "float16"]
_PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
_CUBLAS_CONFIG = ":4096:8"  # what CUDA's deterministic cuBLAS needs (see torch.use_deterministic_algorithms)


def best_device() -> torch.device:
    """The fastest device present: ``cuda`` (its current index), then ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``device`` as a :class:`torch.device`; ``"auto"`` or None: :func:`best_device`.

    Raises
    ------
    ValueError
        If ``device`` names an accelerator this machine or this torch build does not have (the message says
        which devices there are), or is not a device name at all.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return best_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"{device!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(resolved)!r} asked for, but this torch ({torch.__version__}) sees no CUDA "
                             "GPU; use device='auto' to take the best device present, or 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(resolved)!r} asked for, but there are {torch.cuda.device_count()} CUDA "
                             "devices (cuda:0 ...)")
    if resolved.type == "mps" and best_device().type != "mps":
        raise ValueError("device 'mps' asked for, but Apple's MPS backend is not available here; use 'auto' or 'cpu'")
    return resolved


def placement(obj: Any) -> tuple[torch.device, torch.dtype] | None:
    """Device and dtype of the first floating tensor of a module, or of the modules an object holds (a generator
    adapter, a classifier wrapper); None if it holds none."""
    modules = [obj] if isinstance(obj, nn.Module) else [
        value for _, value in sorted(getattr(obj, "__dict__", {}).items()) if isinstance(value, nn.Module)]
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return None


def run_device(device: str | torch.device | None, model: Any, *, name: str = "generator") -> torch.device:
    """The device a job on ``model`` runs on: ``device``, which must be the model's, or (None) the model's.

    Raises
    ------
    ValueError
        If ``device`` is not where the model's weights are (the message names both and how to fix it).
    """
    where = placement(model)
    if device is None:
        return where[0] if where else torch.device("cpu")
    device = resolve_device(device)
    if where is not None:
        on = where[0]
        if on.type != device.type or (None not in (on.index, device.index) and on.index != device.index):
            raise ValueError(f"the {name}'s weights are on {on} ({where[1]}) but device={str(device)!r}: "
                             f"move the {name} with .to({str(device)!r}) or pass device={str(on)!r}")
    return device


def precision_context(device: str | torch.device, precision: Precision = "float32"):
    """A context manager running its block in ``precision`` on ``device`` (autocast; float32: no change).

    Raises
    ------
    ValueError
        For an unknown precision.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}; got {precision!r}")
    dtype = _PRECISIONS[precision]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@contextmanager
def deterministic(seed: int) -> Iterator[torch.Generator]:
    """Run the block bit-reproducibly: deterministic algorithms, no cuDNN autotuning, torch seeded with ``seed``.

    Yields a CPU :class:`torch.Generator` seeded with ``seed`` for the block's own draws. Everything it changes
    (the algorithm switch, cuDNN flags, the global RNG state, ``CUBLAS_WORKSPACE_CONFIG``) is restored on exit.
    Operations that have no deterministic implementation raise inside the block instead of varying silently.
    """
    saved_algorithms = torch.are_deterministic_algorithms_enabled()
    saved_cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    saved_env = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    saved_rng = torch.random.get_rng_state()
    saved_cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_CONFIG)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    torch.manual_seed(int(seed))
    try:
        yield torch.Generator().manual_seed(int(seed))
    finally:
        torch.use_deterministic_algorithms(saved_algorithms)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved_cudnn
        if saved_env is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved_env
        torch.random.set_rng_state(saved_rng)
        if saved_cuda_rng is not None:
            torch.cuda.set_rng_state_all(saved_cuda_rng)
