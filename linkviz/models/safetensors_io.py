"""Reading safetensors files with errors that name the file and say what it is instead.

A safetensors file starts with an 8-byte little-endian header length ``n`` followed by ``n`` bytes of JSON (an
object, so its first byte is ``{``). :func:`check_safetensors_file` checks that before any parser runs, so a
pickle, a ``torch.save`` zip, a NumPy file or garbage saved under a ``.safetensors`` name gets a message that says
so, and :func:`load_safetensors` wraps the parser's own errors the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

__all__ = ["NotSafetensorsError", "check_safetensors_file", "load_safetensors", "safetensors_metadata"]

_HEADER_BYTES = 8
# First bytes of formats that are often saved under the wrong name, and how to convert them.
_KNOWN_FORMATS = (
    (b"PK\x03\x04", "a zip archive, as torch.save writes",
     "torch.load it and write it with safetensors.torch.save_file(state_dict, path)"),
    (b"\x80", "a pickle",
     "unpickle it where you trust its source and write its arrays with safetensors.torch.save_file"),
    (b"\x93NUMPY", "a NumPy .npy file", "np.load it and write it with safetensors.numpy.save_file"),
)


class NotSafetensorsError(ValueError):
    """A file that should be safetensors but is not (or is truncated or corrupt)."""


def _describe(head: bytes) -> str:
    for magic, kind, fix in _KNOWN_FORMATS:
        if head.startswith(magic):
            return f"it looks like {kind}; {fix}"
    return f"its first bytes are {head[:_HEADER_BYTES]!r}; re-create it with safetensors' save_file"


def check_safetensors_file(path: str | Path, *, what: str = "safetensors file") -> Path:
    """Check that ``path`` exists and starts like a safetensors file; return it as a ``Path``.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str
        What the caller expects the file to be, for the messages (e.g. ``"linear link"``).

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    NotSafetensorsError
        A ``ValueError``: the file is too short, its header length does not fit the file, or the header is not a
        JSON object; the message names the file and, for pickles, zips and ``.npy`` files, what it is.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_HEADER_BYTES + 1)
    problem = None
    if size < _HEADER_BYTES + 2:
        problem = f"it has only {size} bytes"
    else:
        header_length = int.from_bytes(head[:_HEADER_BYTES], "little")
        if header_length > size - _HEADER_BYTES:
            problem = f"its header length {header_length} does not fit in its {size} bytes"
        elif head[_HEADER_BYTES:_HEADER_BYTES + 1] != b"{":
            problem = "its header is not a JSON object"
    if problem is not None:
        raise NotSafetensorsError(f"{path} is not a safetensors file ({problem}), so it cannot be read as a "
                                  f"{what}: {_describe(head)}")
    return path


def load_safetensors(path: str | Path, *, framework: Literal["numpy", "pt"] = "numpy",
                     device: str | torch.device = "cpu", what: str = "safetensors file") -> dict[str, Any]:
    """The tensors of a safetensors file, by name, after :func:`check_safetensors_file`.

    Parameters
    ----------
    path : str or Path
    framework : {"numpy", "pt"}
        NumPy arrays or torch tensors.
    device : str or torch.device
        Where torch tensors are placed (``framework="pt"`` only).
    what : str
        What the file should be, for the messages.

    Returns
    -------
    dict of str to ndarray or Tensor

    Raises
    ------
    FileNotFoundError, NotSafetensorsError
        As :func:`check_safetensors_file`; also when the parser rejects the file (corrupt header or data).
    """
    from safetensors import SafetensorError

    path = check_safetensors_file(path, what=what)
    try:
        if framework == "numpy":
            from safetensors.numpy import load_file

            return load_file(str(path))
        from safetensors.torch import load_file as load_torch_file

        return load_torch_file(str(path), device=str(device))
    except (SafetensorError, OSError) as error:
        raise NotSafetensorsError(f"{path} is not a readable safetensors file, so it cannot be read as a {what}: "
                                  f"{error}") from error


def safetensors_metadata(path: str | Path, *, what: str = "safetensors file") -> dict[str, str]:
    """The string metadata of a safetensors file (empty without any), after :func:`check_safetensors_file`."""
    from safetensors import SafetensorError, safe_open

    path = check_safetensors_file(path, what=what)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise NotSafetensorsError(f"{path} is not a readable safetensors file, so it cannot be read as a {what}: "
                                  f"{error}") from error
