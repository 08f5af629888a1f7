"""Quality numbers of the toy world's models: the figures its model card reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from linkviz.frechet import frechet_distance
from linkviz.images import tile_images, to_uint8
from linkviz.models.classifier import Classifier

from .dataset import balanced_labels, flip_shortcut
from .factors import CLASS_NAMES, PART_NAMES, SHORTCUT_CLASS, FactorTable
from .generator_net import ToyGenerator
from .render import RenderBatch, render

#: Pixels of Gaussian blur of the reference renders whose Fréchet ratio the model card quotes for scale.
BLUR_SIGMA = 1.0

def latents(generator: ToyGenerator, labels: np.ndarray, *, seed: int, device: str | torch.device = "cpu"
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded standard-normal z (N, z_dim) and one-hot c (N, c_dim) for the given classes."""
    z = torch.randn(len(labels), generator.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    c = F.one_hot(torch.as_tensor(labels, device=device), generator.c_dim).float()
    return z, c


@torch.no_grad()
def generate(generator: ToyGenerator, z: torch.Tensor, c: torch.Tensor, *, truncation_psi: float = 1.0,
             batch_size: int = 256) -> torch.Tensor:
    """Images (N, 3, 64, 64) in [-1, 1], generated in batches."""
    return torch.cat([generator(z[i:i + batch_size], c[i:i + batch_size], truncation_psi)
                      for i in range(0, len(z), batch_size)])


@torch.no_grad()
def classify(classifier: Classifier, images: torch.Tensor, *, batch_size: int = 256
             ) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes (N,) and penultimate features (N, D) of images in [-1, 1]."""
    predictions, features = [], []
    for start in range(0, len(images), batch_size):
        logits, r = classifier.forward_generated(images[start:start + batch_size].to(classifier.device))
        predictions.append(logits.argmax(1).cpu())
        features.append(r.cpu())
    return torch.cat(predictions).numpy(), torch.cat(features).numpy()


def per_class_rate(hits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean of a boolean array (N,) per class name, plus ``"all"``."""
    rates = {name: float(hits[labels == c].mean()) for c, name in enumerate(CLASS_NAMES) if np.any(labels == c)}
    return {**rates, "all": float(hits.mean())}


def classifier_accuracy(classifier: Classifier, test_set: RenderBatch) -> dict[str, float]:
    """Accuracy on held-out renders, per class and overall."""
    predicted, _ = classify(classifier, test_set.images_as_tensor())
    return per_class_rate(predicted == test_set.factors.label, test_set.factors.label)


def shortcut_reliance(classifier: Classifier, test_set: RenderBatch, *, seed: int) -> dict[str, float]:
    """How much the classifier relies on the planted background shortcut.

    Re-renders the test set with every background hue moved out of the
    shortcut's sky-blue band (shapes, parts and colours unchanged) and
    compares the accuracy on :data:`SHORTCUT_CLASS` before and after.
    """
    shortcut = CLASS_NAMES.index(SHORTCUT_CLASS)
    rows = np.flatnonzero(test_set.factors.label == shortcut)
    table = test_set.factors[rows]
    flipped = render(flip_shortcut(table, seed=seed))
    original, _ = classify(classifier, torch.from_numpy(test_set.images[rows]).permute(0, 3, 1, 2)
                           .float().div(127.5).sub(1.0))
    moved, _ = classify(classifier, flipped.images_as_tensor())
    return {"accuracy_with_shortcut": float((original == shortcut).mean()),
            "accuracy_without_shortcut": float((moved == shortcut).mean())}


def texture_reliance(classifier: Classifier, test_set: RenderBatch) -> dict[str, float]:
    """How much the classifier needs the parts' textures (stripes, dots).

    Re-renders the test set with every part plain (shapes, colours and backgrounds
    unchanged) and compares the accuracy over all classes before and after.  Near-equal
    accuracies say the classifier does not need textures, so dissection should not be
    expected to find texture detectors in it.
    """
    table = test_set.factors
    plain = render(table.with_values(part_texture=np.zeros_like(table.part_texture)))
    original, _ = classify(classifier, test_set.images_as_tensor())
    untextured, _ = classify(classifier, plain.images_as_tensor())
    return {"accuracy_as_drawn": float((original == table.label).mean()),
            "accuracy_all_plain": float((untextured == table.label).mean())}


def generated_agreement(classifier: Classifier, generator: ToyGenerator, *, samples_per_class: int,
                        truncation_psi: float, seed: int) -> tuple[dict[str, float], np.ndarray]:
    """Share of generated images classified as their conditioning class; also returns r (N, D)."""
    labels = balanced_labels(samples_per_class)
    z, c = latents(generator, labels, seed=seed, device=generator.w_avg.device)
    predicted, features = classify(classifier, generate(generator, z, c, truncation_psi=truncation_psi))
    return per_class_rate(predicted == labels, labels), features


def frechet_ratio(classifier: Classifier, generated_features: np.ndarray, test_set: RenderBatch,
                  reference_set: RenderBatch) -> dict[str, float]:
    """Fréchet distance of generated vs rendered features, and the rendered-vs-rendered baseline.

    Also the ratio scored by the reference renders blurred with a 1-pixel Gaussian, which says how much of a
    generator's ratio soft edges alone can explain.
    """
    reference = reference_set.images_as_tensor()
    _, test_features = classify(classifier, test_set.images_as_tensor())
    _, reference_features = classify(classifier, reference)
    _, blurred_features = classify(classifier, torch.from_numpy(
        gaussian_filter(reference.numpy(), sigma=(0, 0, BLUR_SIGMA, BLUR_SIGMA))))
    generated = frechet_distance(generated_features, test_features)
    baseline = frechet_distance(reference_features, test_features)
    return {"generated_vs_rendered": generated, "rendered_vs_rendered": baseline, "ratio": generated / baseline,
            "blurred_renders_ratio": frechet_distance(blurred_features, test_features) / baseline}


def part_reconstruction_error(generator: ToyGenerator, *, samples_per_class: int, seed: int
                              ) -> dict[str, float]:
    """Mean absolute error (RGB in [0, 1]) between generated images and renders of their own factors.

    Every generated sample's factor record is known, so the renderer draws
    what the generator should have drawn; the error is reported per part
    label, and over plain and textured part pixels.
    """
    labels = balanced_labels(samples_per_class)
    z, c = latents(generator, labels, seed=seed, device=generator.w_avg.device)
    truth = render(generator.factors(z, c))
    generated = generate(generator, z, c).permute(0, 2, 3, 1).cpu().numpy()
    error = np.abs((generated + 1) / 2 - truth.images / 255.0).mean(-1)
    result = {}
    for label, name in enumerate(PART_NAMES):
        pixels = truth.part_masks == label
        if pixels.any():
            result[name] = float(error[pixels].mean())
    result["plain parts"] = float(error[truth.texture_masks == 1].mean())
    result["textured parts"] = float(error[truth.texture_masks >= 2].mean())
    return result


@dataclass(frozen=True)
class ClassSamples:
    """Generated samples of one class with the renders of their own factors.

    Attributes
    ----------
    generated, rendered : ndarray of uint8, shape (N, 64, 64, 3)
    predicted : ndarray of int64, shape (N,)
        The classifier's class for each generated image.
    factors : FactorTable
        Ground truth of every sample.
    """

    generated: np.ndarray
    rendered: np.ndarray
    predicted: np.ndarray
    factors: FactorTable


def class_samples(generator: ToyGenerator, classifier: Classifier | None, labels: np.ndarray, *,
                  truncation_psi: float, seed: int) -> ClassSamples:
    """Generate samples for the given class labels (N,), render their factors and classify them."""
    z, c = latents(generator, np.asarray(labels), seed=seed, device=generator.w_avg.device)
    images = generate(generator, z, c, truncation_psi=truncation_psi)
    predicted = classify(classifier, images)[0] if classifier is not None else np.full(len(labels), -1)
    factors = generator.factors(z, c)
    return ClassSamples(generated=to_uint8(images.cpu().numpy()), rendered=render(factors).images,
                        predicted=predicted, factors=factors)


def sample_grid(generator: ToyGenerator, *, per_class: int, truncation_psi: float, seed: int) -> np.ndarray:
    """For each class a row of generated samples above a row of the renders of their factors.

    Returns
    -------
    ndarray of uint8, shape (2 * n_classes * 64, per_class * 64, 3)
    """
    samples = class_samples(generator, None, balanced_labels(per_class), truncation_psi=truncation_psi, seed=seed)
    rows = []
    for k in range(len(CLASS_NAMES)):
        block = slice(k * per_class, (k + 1) * per_class)
        rows += [samples.generated[block], samples.rendered[block]]
    return tile_images(np.concatenate(rows), columns=per_class)
