"""Load the embedded toy world: our classifier and generator with their committed weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linkviz.devices import resolve_device
from linkviz.models.classifier import Classifier, ClassifierSpec
from linkviz.models.safetensors_io import load_safetensors
from linkviz.quantify.method_agreement import ConceptVocabulary, concept_vocabulary

from .classifier_net import ToyResNet
from .concepts import COLOUR_NAMES
from .factors import CLASS_NAMES, CLASS_PARTS, PART_NAMES, TEXTURE_NAMES
from .generator_net import ToyGenerator
from .render import render

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights"

#: How generator output reaches the toy classifier: [-1, 1] images are its native input.
TOY_CLASSIFIER_SPEC = ClassifierSpec(
    input_size=(64, 64), in_channels=3, value_range=(0.0, 1.0), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    resize_to=None, penultimate_layer="avgpool", class_names=CLASS_NAMES, head_layer="fc",
    penultimate_range=(0.0, None),
)


def _load_state(module: torch.nn.Module, path: Path, device: str | torch.device) -> torch.nn.Module:
    if not path.exists():
        raise FileNotFoundError(f"toy-world weights not found at {path}; train them with "
                                f"`python -m linkviz.worlds.toy train {path.stem}`")
    module.load_state_dict(load_safetensors(path, framework="pt", device=device, what="toy-world weights"))
    return module.to(device).eval().requires_grad_(False)


def load_classifier_module(weights_dir: str | Path = DEFAULT_WEIGHTS, *, device: str | torch.device = "cpu"
                           ) -> ToyResNet:
    """The trained :class:`ToyResNet` (eval mode, frozen)."""
    return _load_state(ToyResNet(), Path(weights_dir) / "classifier.safetensors", device)


def load_generator(weights_dir: str | Path = DEFAULT_WEIGHTS, *, device: str | torch.device = "cpu",
                   filename: str = "generator.safetensors") -> ToyGenerator:
    """The trained :class:`ToyGenerator` (eval mode, frozen)."""
    return _load_state(ToyGenerator(), Path(weights_dir) / filename, device)


@dataclass(frozen=True)
class ToyWorld:
    """The embedded default world: a classifier and a generator that share the toy classes."""

    classifier: Classifier
    generator: ToyGenerator

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def part_names(self) -> tuple[str, ...]:
        """Part label names; 0 is the background."""
        return PART_NAMES

    @property
    def dissection_layer(self) -> str:
        """The classifier's last convolutional stage: its units are the penultimate units r (global average pool)."""
        return "layer4"

    def concept_vocabulary(self) -> ConceptVocabulary:
        """The toy world's concepts for comparing unit labels of different methods
        (:func:`linkviz.quantify.method_agreement.concept_vocabulary`): its parts, its classes as objects made of
        their parts, its colours and textures; the probe's scene label is the background colour, so a scene
        detector counts as a background detector."""
        return concept_vocabulary(parts=PART_NAMES, objects=CLASS_PARTS, colours=COLOUR_NAMES,
                                  textures=TEXTURE_NAMES, scene_concept="background")

    def dissection_probe(self, samples_per_class: int, *, seed: int, cache_dir: str | Path | None = None):
        """Renders with object, part, colour, texture and scene labels (:func:`~linkviz.worlds.toy.build_toy_probe`)."""
        from .probe import build_toy_probe

        return build_toy_probe(samples_per_class, seed=seed, cache_dir=cache_dir)

    def part_segmenter(self, *, per_class: int = 10, seed: int = 0, cache_dir: str | Path | None = None,
                       device: str | torch.device = "cpu", **options):
        """The few-shot part segmenter of generated images (``toy_part_segmenter`` in ``part_segmenter.py``).

        Returns the ``ws -> part masks`` function; ``options`` go to ``toy_part_segmenter``.
        """
        from .part_segmenter import toy_part_segmenter

        segment, _ = toy_part_segmenter(self, per_class=per_class, seed=seed, cache_dir=cache_dir, device=device,
                                        **options)
        return segment

    def true_parts(self, z: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        """Ground-truth part masks (N, R, R) of the samples ``G(z, c)``: renders of their factor records."""
        return render(self.generator.factors(z, c), resolution=self.generator.img_resolution).part_masks

    def true_images(self, z: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        """Renders uint8 (N, R, R, 3) of the factor records of the samples ``G(z, c)``: what they should show."""
        return render(self.generator.factors(z, c), resolution=self.generator.img_resolution).images


def load_toy_world(weights_dir: str | Path = DEFAULT_WEIGHTS, *, device: str | torch.device = "auto") -> ToyWorld:
    """Load the toy world's classifier and generator from safetensors weights.

    Parameters
    ----------
    weights_dir : path
        Folder with ``classifier.safetensors`` and ``generator.safetensors``
        (default: the weights committed in the package).
    device : str or torch.device
        Where the models live; "auto": the best device present (a CUDA GPU, else the CPU; see
        :func:`linkviz.devices.resolve_device`).
    """
    device = resolve_device(device)
    module = load_classifier_module(weights_dir, device=device)
    return ToyWorld(classifier=Classifier(module, TOY_CLASSIFIER_SPEC),
                    generator=load_generator(weights_dir, device=device))
