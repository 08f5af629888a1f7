"""Counterfactuals in R: the shift of the penultimate activations that turns a generated image into the target class.

For activations ``r`` of an image of class ``origin``, a shift ``s`` is optimised so that the counterfactual
``r' = clip(r - s)`` (clipped to the layer's declared range: ``relu`` after a ReLU) is classified as ``target``
while its linked latent stays close in direction to that of ``r``:

    loss = -logit_target(r') + 0.6 * logit_origin(r') - 10 * cos(A r + b, A r' + b)

minimised by plain gradient descent (lr 0.5). After each step the counterfactual is linked, rendered and the
*image* is classified; an example stops once its image is the target class. Unlike the Linking in Style
reference, the clip (a ReLU for post-ReLU layers; none for signed ones) is part of the loss as well as of the
evaluation, so the optimised and the rendered counterfactual are the same point. The loss is summed over
examples, each of which depends only on its own row of ``s``, so examples are optimised independently in one batch.

``objective="image"`` scores the logits of the rendered counterfactual instead of the head's logits at ``r'``
(gradients flow through the generator and the classifier): slower per step, but it does not stall where the head's
direction to the target lies partly in what the link cannot render.

With a ``realism`` model (:func:`~linkviz.counterfactual.fit_latent_realism` of the generator's latents) the
search stays realistic: the loss gains ``realism_weight * relu(d / threshold - 0.9) ** 2`` of the linked latent's
Mahalanobis distance ``d``, each step ends with :func:`~linkviz.counterfactual.constraint.project_inside` (latents
beyond the threshold are moved back inside), and an example succeeds only when its image is the target class
*and* its latent lies within the threshold. Without it, the classifier may be fooled by images the generator was
never trained to paint (on the toy world, a yellow-green blob called "tree" at 1.000).

Two options shape *which* realistic counterfactual is found. ``step_metric="realism"`` takes natural-gradient
steps (:func:`~linkviz.counterfactual.constraint.realism_preconditioner`): the gradient is measured in the realism
model's metric of the linked latent instead of the Euclidean metric of r, so the search moves along what the
generator's latents vary along anyway instead of pushing an atypical direction onto the realism boundary.
``target_probability`` asks for a confident counterfactual: an example stops once the target's probability
reaches it (not merely once the target is the argmax). Both default to the reference's behaviour. On the toy world
neither makes mushroom -> tree counterfactuals paint the planted sky background in most examples (measured 3-6 of
24 in the band with both, 2-4 without; a mushroom given a sky background by the generator's own mapping is a
realistic tree at p = 1.0, so the shortcut is reachable, but the gradient path from the original does not lead
there). :func:`~linkviz.counterfactual.find_minimal_counterfactuals` asks for the smallest such change instead and
finds it in most examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from linkviz.counterfactual.constraint import project_inside, realism_penalty, realism_preconditioner
from linkviz.counterfactual.inputs import check_search
from linkviz.counterfactual.realism import LatentRealism
from linkviz.counterfactual.result import CounterfactualResult
from linkviz.linking.link import LinearLink, check_activations
from linkviz.models.classifier import Classifier
from linkviz.models.generator import Generator

__all__ = ["CounterfactualResult", "counterfactual_loss", "find_counterfactuals"]


def classify_latents(generator: Generator, classifier: Classifier, w: Tensor, *, keep_images: bool = False
                     ) -> tuple[Tensor, Tensor | None]:
    """Render latents ``w [M, w_dim]`` (tiled to all ``num_ws``) in one pass and classify the images.

    Returns
    -------
    logits : Tensor, shape [M, K]
        On the CPU.
    images : Tensor, shape [M, 3, H, W], or None
        Float images in ``[-1, 1]`` on the CPU, if ``keep_images``.
    """
    with torch.no_grad():
        batch = generator.synthesis(w[:, None, :].expand(-1, generator.num_ws, -1))
        logits = classifier.forward_generated(batch)[0].float().cpu()
    return logits, batch.float().cpu() if keep_images else None


def render_and_classify(
    link: LinearLink,
    generator: Generator,
    classifier: Classifier,
    r: Tensor,
    *,
    batch_size: int = 64,
    keep_images: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Link ``r [M, D]``, render (w tiled to all ``num_ws``) and classify the images, in batches.

    Returns
    -------
    logits : Tensor, shape [M, K]
        On the CPU.
    images : Tensor, shape [M, 3, H, W], or None
        Float images in ``[-1, 1]`` on the CPU, if ``keep_images``.
    """
    logits, images = [], []
    for start in range(0, r.shape[0], batch_size):
        with torch.no_grad():
            w = link.to_w(r[start:start + batch_size])
        batch_logits, batch_images = classify_latents(generator, classifier, w, keep_images=keep_images)
        logits.append(batch_logits)
        images.append(batch_images)
    return torch.cat(logits), torch.cat(images) if keep_images else None


def counterfactual_logits(link: LinearLink, classifier: Classifier, r_shifted: Tensor, *,
                          generator: Generator | None = None) -> Tensor:
    """Differentiable logits ``[N, K]`` of counterfactual activations ``r_shifted [N, D]``, on their device.

    Those of the classifier's head at ``r_shifted`` (the reference's "activations" objective) or, with a
    ``generator``, those of the image rendered from the linked latent (the "image" objective: gradients flow
    through the generator and the whole classifier).
    """
    if generator is None:
        return classifier.logits_from_penultimate(r_shifted, grad=True).to(r_shifted.device)
    w = link.to_w(r_shifted)
    images = generator.synthesis(w[:, None, :].expand(-1, generator.num_ws, -1))
    return classifier.forward_generated(images, grad=True)[0].to(r_shifted.device)


def counterfactual_loss(
    link: LinearLink,
    classifier: Classifier,
    r: Tensor,
    shift: Tensor,
    *,
    origin: Tensor,
    target: Tensor,
    logit_origin_weight: float = 0.6,
    cosine_weight: float = 10.0,
    generator: Generator | None = None,
    realism: LatentRealism | None = None,
    realism_weight: float = 10.0,
) -> Tensor:
    """Per-example counterfactual loss at ``r' = clip(r - shift)`` (the classifier's ``penultimate_range``).

    ``-logit_target + logit_origin_weight * logit_origin - cosine_weight * cos(A r + b, A r' + b)``, with the
    logits those of the classifier's head at ``r'`` (the reference), or, when a ``generator`` is given, those of
    the image rendered from ``A r' + b`` (differentiated through the generator and the whole classifier); plus,
    with a ``realism`` model, ``realism_weight`` times :func:`~linkviz.counterfactual.constraint.realism_penalty`
    of the linked latent.

    Parameters
    ----------
    link : LinearLink
        The link ``w = A r + b``.
    classifier : Classifier
        Its ``spec.head_layer`` maps r to logits.
    r, shift : Tensor, shape [N, D]
        Activations and shifts; differentiable in both.
    origin, target : Tensor of int, shape [N]
        Class indices.
    logit_origin_weight, cosine_weight : float
        Weights of the origin logit and of the cosine similarity of the linked latents.
    generator : Generator, optional
        Score the rendered counterfactual instead of ``r'``.
    realism : LatentRealism, optional
        Penalise linked latents beyond 0.9 of its threshold.
    realism_weight : float
        Weight of that penalty.

    Returns
    -------
    Tensor, shape [N]
    """
    r_shifted = classifier.spec.clip_penultimate(r - shift)
    logits = counterfactual_logits(link, classifier, r_shifted, generator=generator)
    rows = torch.arange(r.shape[0], device=r.device)
    w_shifted = link.to_w(r_shifted)
    cosine = F.cosine_similarity(link.to_w(r), w_shifted, dim=1)
    loss = (-logits[rows, target.to(r.device)] + logit_origin_weight * logits[rows, origin.to(r.device)]
            - cosine_weight * cosine)
    return loss if realism is None else loss + realism_weight * realism_penalty(realism, w_shifted)


def shift_gradient(loss_of: Callable[[slice, Tensor], Tensor], shift: Tensor, batch_size: int
                   ) -> tuple[Tensor, int]:
    """Gradient of a per-example loss with respect to ``shift [N, D]``, computed ``batch_size`` rows at a time.

    The loss of a row depends only on that row, so the batches give the gradient of the whole sum. A batch that
    runs out of accelerator memory is halved and retried (down to one row); the smaller size is returned for the
    next call. ``loss_of(rows, s)`` gives the per-row losses ``[len(s)]`` of the rows ``rows`` (a slice) at ``s``.
    """
    gradients = []
    start = 0
    while start < len(shift):
        part = slice(start, start + batch_size)
        s = shift[part].detach().requires_grad_(True)
        try:
            (gradient,) = torch.autograd.grad(loss_of(part, s).sum(), s)
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        gradients.append(gradient)
        start += len(s)
    return (torch.cat(gradients) if gradients else torch.zeros_like(shift)), batch_size


def find_counterfactuals(
    link: LinearLink,
    generator: Generator,
    classifier: Classifier,
    r: Tensor | np.ndarray,
    *,
    origin: int | Sequence[int] | Tensor,
    target: int | Sequence[int] | Tensor,
    lr: float = 0.5,
    max_steps: int = 2000,
    logit_origin_weight: float = 0.6,
    cosine_weight: float = 10.0,
    seed: int = 0,
    initial_shift: Tensor | np.ndarray | None = None,
    check_every: int = 1,
    batch_size: int = 64,
    objective: Literal["activations", "image"] = "activations",
    realism: LatentRealism | None = None,
    realism_weight: float = 10.0,
    target_probability: float | None = None,
    step_metric: Literal["euclidean", "realism"] = "euclidean",
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> CounterfactualResult:
    """Optimise shifts of r that turn the rendered images into the target class, for a batch of examples.

    Parameters
    ----------
    link : LinearLink
        The link ``w = A r + b``.
    generator : Generator
        Renders linked latents (tiled to all ``num_ws``); must live on ``device``.
    classifier : Classifier
        Classifies the rendered images; ``spec.head_layer`` must map r to logits.
    r : Tensor or ndarray, shape [N, D]
        Activations of the original images.
    origin, target : int or sequence of int or Tensor of shape [N]
        Class of each original and the class to reach (one int applies to every example).
    lr : float
        Gradient-descent step size.
    max_steps : int
        Steps before an example counts as a failure.
    logit_origin_weight, cosine_weight : float
        Loss weights (see :func:`counterfactual_loss`).
    seed : int
        Seed of the initial shift, uniform in ``[0, 1)`` (drawn on the CPU, so identical on every device).
    initial_shift : Tensor or ndarray, shape [N, D], optional
        Start from this shift instead.
    check_every : int
        Render and classify every this many steps (1 = after every step, as the reference); recorded step
        counts are then multiples of it.
    batch_size : int
        Images per generator and classifier pass, also per backward pass of the image objective (halved
        automatically when a pass runs out of accelerator memory).
    objective : {"activations", "image"}
        Score the logits of the head at ``r'`` (the reference; cheap) or those of the rendered counterfactual
        (each step back-propagates through the generator and the classifier). The image objective reaches the
        target where the head's direction lies partly outside what the link can render, at several times
        the cost of a step.
    realism : LatentRealism, optional
        The generator's latent distribution (e.g. ``fit_latent_realism(linked.pairs.w)``). Given, the search
        stays realistic (penalty and projection, see the module docstring) and an example succeeds only when its
        image is the target class and its linked latent lies within ``realism.threshold``; the result records
        each example's latent distance. None: the unconstrained search of the reference.
    realism_weight : float
        Weight of the realism penalty in the loss (non-negative; 0 keeps only the projection).
    target_probability : float, optional
        In ``(0, 1)``: an example reaches its target only once the target's softmax probability is at least this
        (and it is the argmax); None: once it is the argmax, i.e. at the decision boundary.
    step_metric : {"euclidean", "realism"}
        Gradient steps in r (the reference) or natural-gradient steps in the realism model's metric of the
        linked latent (needs ``realism``; see the module docstring).
    device : torch.device or str
        Where the optimisation runs.
    progress : bool
        Show a progress bar over steps.

    Returns
    -------
    CounterfactualResult

    Raises
    ------
    ValueError
        If ``r`` is not [N, D] or holds NaN/inf, lies outside the classifier's declared ``penultimate_range``,
        if any target equals its origin, if ``realism`` models latents of another size than the link's, or for
        bad options.
    IndexError
        If a class index is out of range.
    """
    r, origin, target = check_search(link, classifier, r, origin=origin, target=target, objective=objective,
                                     realism=realism, device=device)
    n_examples = r.shape[0]
    if max_steps < 1 or check_every < 1 or batch_size < 1:
        raise ValueError(f"max_steps, check_every and batch_size must be positive; got {max_steps}, "
                         f"{check_every}, {batch_size}")
    if realism_weight < 0:
        raise ValueError(f"realism_weight must be non-negative; got {realism_weight}")
    if target_probability is not None and not 0.0 < target_probability < 1.0:
        raise ValueError(f"target_probability must lie in (0, 1) or be None; got {target_probability}")
    if step_metric not in ("euclidean", "realism"):
        raise ValueError(f"step_metric must be 'euclidean' or 'realism'; got {step_metric!r}")
    if step_metric == "realism" and realism is None:
        raise ValueError("step_metric='realism' measures steps with the realism model; pass realism= "
                         "(e.g. fit_latent_realism(linked.pairs.w)) or use step_metric='euclidean'")
    preconditioner = None if step_metric == "euclidean" else realism_preconditioner(link, realism, device=device)
    if initial_shift is None:
        shift = torch.rand(r.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    else:
        shift = check_activations(initial_shift, link, device).clone()
        if shift.shape != r.shape:
            raise ValueError(f"initial_shift must have the shape of r {list(r.shape)}; got {list(shift.shape)}")

    active = torch.ones(n_examples, dtype=torch.bool)
    success = torch.zeros(n_examples, dtype=torch.bool)
    steps = torch.full((n_examples,), max_steps, dtype=torch.long)
    predicted = torch.full((n_examples,), -1, dtype=torch.long)
    probability = torch.zeros(n_examples)
    distance = torch.full((n_examples,), float("nan"), dtype=torch.float64)
    gradient_batch = batch_size
    with tqdm(total=max_steps, desc="counterfactuals", unit="step", disable=not progress) as bar:
        for step in range(1, max_steps + 1):
            rows = torch.nonzero(active).flatten()
            rows_device = rows.to(device)
            def loss_of(part: slice, s: Tensor, rows: Tensor = rows, rows_device: Tensor = rows_device) -> Tensor:
                return counterfactual_loss(link, classifier, r[rows_device[part]], s, origin=origin[rows[part]],
                                           target=target[rows[part]], logit_origin_weight=logit_origin_weight,
                                           cosine_weight=cosine_weight, realism=realism,
                                           realism_weight=realism_weight,
                                           generator=generator if objective == "image" else None)

            # the image objective back-propagates through both networks: in batches, halved on out-of-memory
            gradient, gradient_batch = shift_gradient(loss_of, shift[rows_device],
                                                      gradient_batch if objective == "image" else len(rows))
            if preconditioner is not None:
                gradient = gradient @ preconditioner
            shift[rows_device] = (shift[rows_device] - lr * gradient).detach()
            if realism is not None:
                shift[rows_device] = project_inside(link, classifier, realism, r[rows_device], shift[rows_device])
            if step % check_every == 0 or step == max_steps:
                r_new = classifier.spec.clip_penultimate(r[rows_device] - shift[rows_device])
                logits, _ = render_and_classify(link, generator, classifier, r_new, batch_size=batch_size)
                predicted[rows] = logits.argmax(dim=1)
                probability[rows] = logits.softmax(dim=1)[torch.arange(len(rows)), target[rows]]
                hit = predicted[rows] == target[rows]
                if target_probability is not None:
                    hit &= probability[rows] >= target_probability
                if realism is not None:
                    with torch.no_grad():
                        distance[rows] = realism.distance_tensor(link.to_w(r_new).double()).cpu()
                    hit &= distance[rows] <= realism.threshold
                reached = rows[hit]
                success[reached], steps[reached], active[reached] = True, step, False
            bar.update()
            bar.set_postfix(remaining=int(active.sum()))
            if not active.any():
                break
    shift = shift.cpu()
    return CounterfactualResult(
        shift=shift.numpy(), r_counterfactual=classifier.spec.clip_penultimate(r.cpu() - shift).numpy(),
        success=success.numpy(),
        steps=steps.numpy(), predicted=predicted.numpy(), target_probability=probability.numpy(),
        origin=origin.numpy(), target=target.numpy(), class_names=tuple(classifier.spec.class_names),
        latent_distance=None if realism is None else distance.numpy(),
        realism_threshold=None if realism is None else float(realism.threshold),
    )
