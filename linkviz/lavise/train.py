"""Training the LaViSE explainer head on a frozen classifier from probe images with concept masks.

The backbone is frozen and masked pooling is deterministic, so every region's pooled feature vector is computed
once (one forward pass over the probe) and the head is trained on those vectors, which is the same computation as
running the frozen network every step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..dissection.probe_dataset import ProbeDataset
from ..hashing import hash_state
from ..minibatch_training import fit_minibatches
from ..models.classifier import Classifier, ClassifierSpec, unwrap_classifier
from ..models.hooks import resolve_module
from ..models.modules import eval_mode, module_device
from .features import batches, layer_maps
from .head import ExplainerHead, TrainedExplainer
from .loss import csmr_loss
from .pooling import MaskResize, masked_pool, resize_masks
from .regions import concept_labels, image_regions
from .semantic_space import NameMapping, SemanticSpace

__all__ = ["RegionFeatures", "region_features", "train_explainer"]

BatchNormMode = Literal["frozen", "batch"]


@dataclass(frozen=True)
class RegionFeatures:
    """Pooled target-layer features of every concept region of a probe, with their label words.

    Attributes
    ----------
    features : ndarray of float32, shape (S, C)
        Masked-pooled maps, one row per region.
    targets : ndarray of bool, shape (S, T)
        Multi-hot label words of each region.
    image_index : ndarray of int64, shape (S,)
        Probe image of each region.
    label_words : tuple of str, length T
        The words the targets index.
    label_vectors : ndarray of float32, shape (T, D)
        Their vectors in the semantic space.
    concepts : tuple of str
        Concept names used.
    n_dropped : int
        Regions whose mask vanished at the feature resolution (``mask_resize="nearest"`` only).
    """

    features: np.ndarray
    targets: np.ndarray
    image_index: np.ndarray
    label_words: tuple[str, ...]
    label_vectors: np.ndarray
    concepts: tuple[str, ...]
    n_dropped: int = 0


def region_features(model: nn.Module | Classifier, layer: str, probe: ProbeDataset, space: SemanticSpace, *,
                    concepts: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                    name_mapping: NameMapping | None = None, mask_resize: MaskResize = "area",
                    spec: ClassifierSpec | None = None, batch_size: int = 32, device: str | torch.device | None = None,
                    progress: bool = True) -> RegionFeatures:
    """Masked-pooled features of all concept regions of a probe (the explainer's training set).

    A region is the mask of one concept in one image (the union over label layers; the whole image for a
    whole-image label); concepts with identical masks in an image form one region with all their words as
    targets. Masks are resized to the layer's resolution and the maps pooled as in LaViSE
    (``sum(F * M) / (h * w)``).

    Parameters
    ----------
    model : nn.Module or Classifier
        The frozen classifier (not modified; eval mode during the pass).
    layer : str
        Dotted name of the target layer.
    probe : ProbeDataset
        Images with concept masks.
    space : SemanticSpace
        Semantic space of the targets.
    concepts : sequence of str, optional
        Concept names to train on (default all with pixels in ``categories``).
    categories : sequence of str, optional
        Probe categories to read (default all).
    name_mapping : mapping, optional
        Words for concept names (see :func:`~linkviz.lavise.semantic_space.concept_words`).
    mask_resize : {"area", "nearest"}
        See :func:`~linkviz.lavise.pooling.resize_masks`.
    spec : ClassifierSpec, optional
        Input preprocessing (default: a Classifier's spec; none for a bare module).
    batch_size : int
        Images per forward pass.
    device : str or torch.device, optional
        Where the model runs (default: the model's device; the model is not moved).
    progress : bool
        Show a progress bar.

    Returns
    -------
    RegionFeatures

    Raises
    ------
    LayerNotFoundError
        For an unknown layer.
    OutOfVocabularyError
        If a concept name has words outside the semantic space.
    ValueError
        For unknown or empty concepts or categories, or a probe without any usable region.
    """
    module, spec = unwrap_classifier(model, spec)
    resolve_module(module, layer)
    categories = probe.categories if categories is None else tuple(categories)
    labels = concept_labels(probe, categories=categories, concepts=concepts)
    names = tuple(probe.label_names[i] for i in labels)
    word_ids = space.word_ids(names, name_mapping=name_mapping)
    vocabulary = list(dict.fromkeys(i for ids in word_ids for i in ids))
    column = {row: j for j, row in enumerate(vocabulary)}
    label_targets = np.zeros((probe.n_labels, len(vocabulary)), bool)
    for label, ids in zip(labels, word_ids):
        label_targets[label, [column[i] for i in ids]] = True
    keep = np.zeros(probe.n_labels, bool)
    keep[labels] = True
    device = module_device(module) if device is None else torch.device(device)
    features, targets, image_index, n_dropped = [], [], [], 0
    with eval_mode(module), tqdm(total=len(probe), desc=f"{layer}: region features", unit="img",
                                 disable=not progress) as bar:
        for indices in batches(len(probe), batch_size):
            maps = layer_maps(module, layer, probe.image_batch(indices), spec=spec, device=device)
            pixel, image = probe.label_batch(indices, categories=categories)
            for b, i in enumerate(indices):
                regions = image_regions(None if pixel is None else pixel[b], None if image is None else image[b],
                                        keep=keep, segmentation_shape=probe.segmentation_shape)
                if not regions:
                    continue
                masks = torch.from_numpy(np.stack([mask for _, mask in regions])).to(device)
                masks = resize_masks(masks, tuple(maps.shape[2:]), mode=mask_resize)
                present = masks.flatten(1).amax(1) > 0
                n_dropped += int((~present).sum())
                pooled = masked_pool(maps[b:b + 1].expand(len(regions), -1, -1, -1), masks)
                for r, (region_labels, _) in enumerate(regions):
                    if present[r]:
                        targets.append(label_targets[list(region_labels)].any(0))
                        image_index.append(int(i))
                features.append(pooled[present].cpu().numpy())
            bar.update(len(indices))
    if not targets:
        raise ValueError(f"no concept region of {names} survives at the resolution of layer {layer!r}")
    return RegionFeatures(features=np.concatenate(features).astype(np.float32), targets=np.stack(targets),
                          image_index=np.asarray(image_index, dtype=np.int64),
                          label_words=tuple(space.words[i] for i in vocabulary),
                          label_vectors=space.vectors[vocabulary].copy(), concepts=names, n_dropped=n_dropped)


def _set_batchnorm(head: ExplainerHead, mode: BatchNormMode) -> None:
    if mode == "frozen":
        for submodule in head.modules():
            if isinstance(submodule, nn.BatchNorm1d):
                submodule.eval()


def _epoch_loss(head: ExplainerHead, features: Tensor, targets: Tensor, label_vectors: Tensor, *,
                margin: float, batch_size: int) -> float:
    """Mean CSMR loss of ``head`` on ``features [M, F]`` in eval mode (each submodule's mode is restored)."""
    total = 0.0
    with eval_mode(head), torch.no_grad():
        for start in range(0, len(features), batch_size):
            predictions = head(features[start:start + batch_size])
            total += float(csmr_loss(predictions, label_vectors, targets[start:start + batch_size], margin=margin,
                                     reduction="sum"))
    return total / max(1, len(features))


def train_explainer(model: nn.Module | Classifier, layer: str, probe: ProbeDataset, space: SemanticSpace, *,
                    seed: int, concepts: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                    name_mapping: NameMapping | None = None, epochs: int = 30, batch_size: int = 64,
                    learning_rate: float = 1e-3, margin: float = 1.0, dropout: float = 0.1,
                    val_fraction: float = 0.1, batchnorm: BatchNormMode = "batch", mask_resize: MaskResize = "area",
                    spec: ClassifierSpec | None = None, forward_batch_size: int = 32,
                    device: str | torch.device | None = None, progress: bool = True,
                    regions: RegionFeatures | None = None) -> TrainedExplainer:
    """Train a LaViSE explainer head for one layer of a frozen classifier.

    The head (:class:`~linkviz.lavise.head.ExplainerHead`) learns to map the masked-pooled maps of a concept
    region to the words of the concept, with the CSMR loss over all label words and Adam at a constant learning
    rate (:func:`~linkviz.minibatch_training.fit_minibatches`). The weights of the epoch with the lowest validation
    loss are kept (the last epoch without a validation split).

    Parameters
    ----------
    model : nn.Module or Classifier
        The frozen classifier (never changed).
    layer : str
        Dotted name of the target layer (e.g. ``"layer4"``).
    probe : ProbeDataset
        Images with per-pixel concept masks and names (e.g. :func:`linkviz.dissection.build_toy_probe`).
    space : SemanticSpace
        Semantic space of the targets (e.g. :func:`~linkviz.lavise.semantic_space.load_glove_6b_50d`).
    seed : int
        Seeds the head's initialisation, dropout, the validation split and the batch order (the global torch
        random state is left as it was).
    concepts, categories, name_mapping, mask_resize, spec
        See :func:`region_features`; ``concepts`` restricts training to some concepts (the unseen-concept test).
    epochs : int
        Passes over the training regions.
    batch_size : int
        Regions per step.
    learning_rate : float
        Adam learning rate (LaViSE: 1e-4 over far more steps on COCO/VG).
    margin : float
        CSMR margin.
    dropout : float
        Head dropout.
    val_fraction : float
        Fraction of regions held out for model selection (0 for none).
    batchnorm : {"batch", "frozen"}
        ``"batch"``: the head's BatchNorm layers train normally; ``"frozen"``: the released code's behaviour
        (``set_bn_eval``): they stay in eval mode, so running statistics remain (0, 1) and only their affine
        weights train.
    forward_batch_size : int
        Images per forward pass of the classifier.
    device : str or torch.device, optional
        Where the model runs and the head trains (default: the model's device).
    progress : bool
        Show progress bars.
    regions : RegionFeatures, optional
        Precomputed :func:`region_features` of this model, layer and probe (skips the forward pass; ``concepts``
        then filters its regions by label word).

    Returns
    -------
    TrainedExplainer

    Raises
    ------
    LayerNotFoundError, OutOfVocabularyError, ValueError
        See :func:`region_features`; also for bad hyperparameters.
    """
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise ValueError(f"epochs, batch_size and learning_rate must be positive, got {epochs}, {batch_size}, "
                         f"{learning_rate}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    if batchnorm not in ("batch", "frozen"):
        raise ValueError(f"batchnorm must be 'batch' or 'frozen', got {batchnorm!r}")
    module, spec = unwrap_classifier(model, spec)
    resolve_module(module, layer)
    device = module_device(module) if device is None else torch.device(device)
    if regions is None:
        regions = region_features(module, layer, probe, space, concepts=concepts, categories=categories,
                                  name_mapping=name_mapping, mask_resize=mask_resize, spec=spec,
                                  batch_size=forward_batch_size, device=device, progress=progress)
    elif concepts is not None:
        regions = _restrict(regions, space, concepts, name_mapping=name_mapping)
    if regions.label_vectors.shape[1] != space.dim:
        raise ValueError(f"regions were computed in a {regions.label_vectors.shape[1]}-d space, but space "
                         f"{space.name!r} is {space.dim}-d")
    n = len(regions.features)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = round(val_fraction * n) if n > 1 else 0
    val_rows, train_rows = order[:n_val], order[n_val:]
    features = torch.from_numpy(regions.features).to(device)
    targets = torch.from_numpy(regions.targets).to(device)
    label_vectors = torch.from_numpy(regions.label_vectors).to(device)
    train_loss, val_loss = [], []
    devices = [device] if device.type == "cuda" else []
    train_index = torch.from_numpy(train_rows).to(device)
    best: dict = {"state": None, "epoch": epochs - 1, "loss": float("inf")}

    def batch_loss(rows: Tensor, flipped: Tensor) -> Tensor:
        rows = train_index[rows]
        return csmr_loss(head(features[rows]), label_vectors, targets[rows], margin=margin)

    def after_epoch(epoch: int, mean_loss: float) -> None:
        train_loss.append(mean_loss)
        if n_val:
            val_loss.append(_epoch_loss(head, features[val_rows], targets[val_rows], label_vectors,
                                        margin=margin, batch_size=256))
            if val_loss[-1] < best["loss"]:
                best.update(state=copy.deepcopy(head.state_dict()), epoch=epoch, loss=val_loss[-1])
        head.train()
        _set_batchnorm(head, batchnorm)

    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        head = ExplainerHead(features.shape[1], space.dim, dropout=dropout).to(device)
        head.train()
        _set_batchnorm(head, batchnorm)
        # BatchNorm in training mode cannot learn from a single sample: such a last batch is skipped
        fit_minibatches(head, len(train_rows), batch_loss, epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate, schedule=None, min_batch_size=2 if batchnorm == "batch" else 1,
                        seed=seed, device=device, on_epoch=after_epoch, description=f"{layer}: explainer",
                        progress=progress)
        if best["state"] is not None:
            head.load_state_dict(best["state"])
    best_epoch = best["epoch"]
    settings = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "margin": margin,
                "val_fraction": val_fraction, "batchnorm": batchnorm, "mask_resize": mask_resize,
                "n_dropped_regions": regions.n_dropped}
    return TrainedExplainer(head=head.eval(), layer=layer, space_name=space.name, concepts=regions.concepts,
                            label_words=regions.label_words, train_loss=tuple(train_loss), val_loss=tuple(val_loss),
                            best_epoch=best_epoch, n_samples=n, seed=seed, settings=settings,
                            classifier_hash=hash_state(module))


def _restrict(regions: RegionFeatures, space: SemanticSpace, concepts: Sequence[str], *,
              name_mapping: NameMapping | None) -> RegionFeatures:
    """Keep only the label words of ``concepts`` and the regions that still have a target."""
    unknown = [c for c in concepts if c not in regions.concepts]
    if unknown:
        raise ValueError(f"concepts {unknown} are not among the precomputed regions' concepts")
    words = {space.words[i] for ids in space.word_ids(concepts, name_mapping=name_mapping) for i in ids}
    columns = [j for j, word in enumerate(regions.label_words) if word in words]
    targets = regions.targets[:, columns]
    rows = targets.any(1)
    return RegionFeatures(features=regions.features[rows], targets=targets[rows],
                          image_index=regions.image_index[rows],
                          label_words=tuple(regions.label_words[j] for j in columns),
                          label_vectors=regions.label_vectors[columns], concepts=tuple(concepts),
                          n_dropped=regions.n_dropped)
