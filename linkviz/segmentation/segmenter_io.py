"""Few-shot segmenters on disk: one safetensors file with the weights, the architecture and the caller's extras.

Nothing is unpickled: the file holds tensors and a str -> str metadata table. The segmenter's tensors are stored
under ``segmenter.``, the caller's extra tensors (e.g. a :class:`~linkviz.segmentation.LatentClassProbe`) under
``extra.``; the architecture is the JSON of :attr:`PartSegmenter.config` in the metadata entry ``segmenter``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from linkviz.atomic_files import write_atomically
from linkviz.segmentation.fewshot import PartSegmenter

__all__ = ["SavedSegmenter", "load_part_segmenter", "save_part_segmenter"]

_SEGMENTER_PREFIX, _EXTRA_PREFIX, _CONFIG_KEY = "segmenter.", "extra.", "segmenter"


@dataclass(frozen=True)
class SavedSegmenter:
    """What :func:`load_part_segmenter` reads: the segmenter, the extra tensors and the caller's metadata."""

    segmenter: PartSegmenter
    tensors: dict[str, Tensor]
    metadata: dict[str, str]


def save_part_segmenter(segmenter: PartSegmenter, path: str | os.PathLike[str], *,
                        tensors: Mapping[str, Tensor] | None = None,
                        metadata: Mapping[str, str] | None = None) -> None:
    """Write ``segmenter`` (and extras) to a safetensors file, atomically (a temporary file, then a rename).

    Parameters
    ----------
    segmenter : PartSegmenter
        Any segmenter; its buffers (feature mean and std) are stored with its weights.
    path : path
        The file to write; its folder must exist.
    tensors : mapping of str to Tensor, optional
        Extra tensors to store alongside.
    metadata : mapping of str to str, optional
        Extra metadata; the key ``"segmenter"`` is reserved.
    """
    metadata = dict(metadata or {})
    if _CONFIG_KEY in metadata:
        raise ValueError(f"metadata key {_CONFIG_KEY!r} is reserved for the segmenter's architecture")
    from safetensors.torch import save

    state = {_SEGMENTER_PREFIX + name: value.detach().cpu().contiguous()
             for name, value in segmenter.state_dict().items()}
    state |= {_EXTRA_PREFIX + name: value.detach().cpu().contiguous() for name, value in (tensors or {}).items()}
    write_atomically(path, save(state, metadata={**metadata, _CONFIG_KEY: json.dumps(segmenter.config)}))


def load_part_segmenter(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> SavedSegmenter:
    """Read a file written by :func:`save_part_segmenter`.

    Parameters
    ----------
    path : path
    device : str or torch.device
        Where the segmenter goes (in eval mode, frozen); extra tensors stay on the CPU.

    Returns
    -------
    SavedSegmenter

    Raises
    ------
    ValueError
        If the file is not a readable segmenter file (corrupt, truncated, missing tensors or architecture).
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (a safetensors handle)
        segmenter = PartSegmenter(**json.loads(metadata.pop(_CONFIG_KEY)))
        segmenter.load_state_dict({name[len(_SEGMENTER_PREFIX):]: value for name, value in state.items()
                                   if name.startswith(_SEGMENTER_PREFIX)})
    except Exception as error:  # safetensors, JSON, metadata and state-dict errors come in many types
        raise ValueError(f"{path} is not a readable part segmenter file: {error}") from error
    extras = {name[len(_EXTRA_PREFIX):]: value for name, value in state.items() if name.startswith(_EXTRA_PREFIX)}
    return SavedSegmenter(segmenter=segmenter.to(device).eval().requires_grad_(False), tensors=extras,
                          metadata=metadata)
