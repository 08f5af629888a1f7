"""The LaViSE explainer head, and saving and loading a trained explainer with safetensors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from linkviz.atomic_files import write_atomically
from linkviz.models.safetensors_io import check_safetensors_file

__all__ = ["ExplainerHead", "TrainedExplainer", "load_explainer"]

_FORMAT = "linkviz.lavise.explainer/1"


class ExplainerHead(nn.Sequential):
    """Maps a pooled feature vector to a word-embedding vector (it replaces the classifier's ``fc``).

    BatchNorm1d(C) -> Dropout(p) -> Linear(C, C) -> ReLU -> BatchNorm1d(C) -> Dropout(p) -> Linear(C, D).

    Parameters
    ----------
    in_channels : int
        Channels C of the target layer.
    embedding_dim : int
        Size D of the semantic space.
    dropout : float
        Dropout probability (0.1 in LaViSE).
    """

    def __init__(self, in_channels: int, embedding_dim: int, *, dropout: float = 0.1) -> None:
        if in_channels < 1 or embedding_dim < 1:
            raise ValueError(f"in_channels and embedding_dim must be positive, got {in_channels}, {embedding_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        super().__init__(
            nn.BatchNorm1d(in_channels), nn.Dropout(dropout), nn.Linear(in_channels, in_channels), nn.ReLU(),
            nn.BatchNorm1d(in_channels), nn.Dropout(dropout), nn.Linear(in_channels, embedding_dim),
        )
        self.in_channels = int(in_channels)
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)

    def forward(self, features: Tensor) -> Tensor:
        """Embedding predictions [N, D] from pooled features [N, C]."""
        if features.ndim != 2 or features.shape[1] != self.in_channels:
            raise ValueError(f"the explainer head takes features of shape [N, {self.in_channels}], got "
                             f"{tuple(features.shape)}; was it trained on another layer?")
        return super().forward(features)


@dataclass(frozen=True, eq=False)
class TrainedExplainer:
    """An explainer head with what it was trained on.

    Attributes
    ----------
    head : ExplainerHead
        In eval mode.
    layer : str
        Dotted name of the target layer.
    space_name : str
        Name of the semantic space of the targets.
    concepts : tuple of str
        Concept names trained on.
    label_words : tuple of str
        The words the loss ranked (targets and negatives), in the order of the loss's label matrix.
    train_loss, val_loss : tuple of float
        Mean loss per epoch (``val_loss`` is empty without a validation split).
    best_epoch : int
        Epoch whose weights were kept (0-based; the lowest validation loss, else the last).
    n_samples : int
        Training samples (masked regions) before the validation split.
    seed : int
    settings : dict
        The training options (epochs, learning rate, BatchNorm mode, ...), saved with the weights.
    classifier_hash : str or None
        :func:`linkviz.hash_state` of the classifier it was trained on; :func:`~linkviz.lavise.explain_units`
        refuses another classifier. None for explainers saved before it was recorded (not checked).
    """

    head: ExplainerHead
    layer: str
    space_name: str
    concepts: tuple[str, ...]
    label_words: tuple[str, ...]
    train_loss: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()
    best_epoch: int = 0
    n_samples: int = 0
    seed: int = 0
    settings: dict = field(default_factory=dict)
    classifier_hash: str | None = None

    def __repr__(self) -> str:
        return (f"TrainedExplainer(layer={self.layer!r}, {self.head.in_channels} -> {self.head.embedding_dim} "
                f"({self.space_name}), {len(self.concepts)} concepts, {len(self.train_loss)} epochs)")

    def save(self, path: str | Path) -> Path:
        """Write the head weights and this record to a ``.safetensors`` file; returns the path."""
        from safetensors.torch import save

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"format": _FORMAT, "in_channels": self.head.in_channels, "embedding_dim": self.head.embedding_dim,
                  "dropout": self.head.dropout, "layer": self.layer, "space_name": self.space_name,
                  "concepts": list(self.concepts), "label_words": list(self.label_words),
                  "train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                  "best_epoch": self.best_epoch, "n_samples": self.n_samples, "seed": self.seed,
                  "settings": self.settings, "classifier_hash": self.classifier_hash}
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.head.state_dict().items()}
        write_atomically(path, save(state, metadata={"lavise": json.dumps(record)}))
        return path


def load_explainer(path: str | Path, *, device: str | torch.device = "cpu") -> TrainedExplainer:
    """Read an explainer written by :meth:`TrainedExplainer.save`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a saved LaViSE explainer.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = check_safetensors_file(path, what="LaViSE explainer")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "lavise" not in metadata:
        raise ValueError(f"{path} is not a saved LaViSE explainer (no 'lavise' metadata)")
    record = json.loads(metadata["lavise"])
    if record.get("format") != _FORMAT:
        raise ValueError(f"{path} has explainer format {record.get('format')!r}; expected {_FORMAT!r}")
    head = ExplainerHead(record["in_channels"], record["embedding_dim"], dropout=record["dropout"])
    head.load_state_dict(load_file(str(path)))
    return TrainedExplainer(
        head=head.to(device).eval(), layer=record["layer"], space_name=record["space_name"],
        concepts=tuple(record["concepts"]), label_words=tuple(record["label_words"]),
        train_loss=tuple(record["train_loss"]), val_loss=tuple(record["val_loss"]), best_epoch=record["best_epoch"],
        n_samples=record["n_samples"], seed=record["seed"], settings=record["settings"],
        classifier_hash=record.get("classifier_hash"),
    )
