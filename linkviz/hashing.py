"""Stable content hashes for model weights and call arguments.

The hashes key the on-disk caches (see :mod:`linkviz.cache`): two calls share a
cache entry only if their arguments *and* the weights of the models involved are
byte-for-byte identical.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["hash_arguments", "hash_state"]

_DIGEST_CHARS = 16


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Raw bytes of a tensor in CPU memory order (bfloat16 viewed as int16)."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return tensor.numpy().tobytes()


def _update_with_state_dict(digest: Any, prefix: str, module: nn.Module) -> None:
    for name, value in module.state_dict().items():
        digest.update(f"{prefix}{name}".encode())
        if isinstance(value, torch.Tensor):
            digest.update(f"|{value.dtype}|{tuple(value.shape)}|".encode())
            digest.update(_tensor_bytes(value))
        else:  # extra state stored by some modules
            digest.update(f"|extra|{hash_arguments(value=value)}|".encode())


def hash_state(obj: Any) -> str:
    """Hash the weights and buffers of a model.

    Parameters
    ----------
    obj : nn.Module or object
        A module, whose ``state_dict`` is hashed, or any object holding modules
        as attributes (e.g. a generator adapter): the state dicts of all
        ``nn.Module``-valued entries of ``vars(obj)`` are hashed in name order.

    Returns
    -------
    str
        First 16 hex characters of a sha256 over the tensor names, dtypes,
        shapes and raw bytes. Deterministic across calls and processes.

    Raises
    ------
    TypeError
        If ``obj`` is not a module and holds no module attributes (hashing
        nothing would make every such object share one cache entry).
    """
    digest = hashlib.sha256()
    if isinstance(obj, nn.Module):
        _update_with_state_dict(digest, "", obj)
        return digest.hexdigest()[:_DIGEST_CHARS]
    modules = sorted(
        (name, value) for name, value in vars(obj).items() if isinstance(value, nn.Module)
    )
    if not modules:
        raise TypeError(f"{type(obj).__name__} is not an nn.Module and holds no nn.Module attributes")
    for name, module in modules:
        _update_with_state_dict(digest, f"{name}.", module)
    return digest.hexdigest()[:_DIGEST_CHARS]


def _array_token(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    if array.dtype == object:
        raise TypeError("object arrays cannot be hashed")
    return {
        "__array__": str(array.dtype),
        "shape": list(array.shape),
        "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
    }


def _canonical(value: Any) -> Any:
    """Turn ``value`` into plain JSON types, tagging floats and arrays."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return {"__float__": repr(value) if math.isfinite(value) else str(value)}
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            token = _array_token(value.detach().cpu().contiguous().view(torch.int16).numpy())
            token["__array__"] = "bfloat16"
            return token
        return _array_token(value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return _array_token(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        keys = list(value)
        if not all(isinstance(key, str) for key in keys):
            raise TypeError(f"mapping keys must be str, got {keys!r}")
        return {key: _canonical(value[key]) for key in sorted(keys)}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    raise TypeError(f"cannot hash argument of type {type(value).__name__}")


def hash_arguments(**kwargs: Any) -> str:
    """Hash keyword arguments into a stable key.

    Parameters
    ----------
    **kwargs
        JSON-able values: ``None``, bool, int, float, str, paths, lists, tuples
        (hashed as lists), str-keyed mappings (keys sorted), numpy scalars,
        numpy arrays and tensors (hashed by dtype, shape and bytes).

    Returns
    -------
    str
        First 16 hex characters of a sha256 over the canonical JSON. Floats are
        hashed by ``repr`` so ``1`` and ``1.0`` give different keys.

    Raises
    ------
    TypeError
        For values of any other type.
    """
    text = json.dumps(_canonical(kwargs), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]
