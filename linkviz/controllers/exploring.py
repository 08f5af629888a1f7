"""ExploreData: what the tabs of :func:`linkviz.explore` need from a world, made on first use and cached on disk.

Each getter builds one thing the first time it is called and keeps it: the linked model (pairs and link), held-out
pairs, the toy world's part segmenter, a unit sweep, its change table, the toy probe and its dissection. The
expensive steps write their results under ``cache_dir`` (pairs, sweep, change table, segmenter, probe renders,
dissection), so a second app on the same world reads them back. Plain Python: the app shows progress and decides
when to call what.

The population, dissection and unit-card tabs need what only the embedded toy world has (part ground truth to
train a segmenter, a probe set with concept labels); for another world :meth:`ExploreData.unavailable` says why.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linkviz.cache import default_cache_root
from linkviz.devices import run_device
from linkviz.dissection.dissect import DissectionResult, dissect
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.dissection.probing_world import ProbingWorld
from linkviz.hashing import hash_arguments, hash_state
from linkviz.linking.linked_model import LinkedModel, build_linked_model
from linkviz.pairs import PairSet, sample_pairs
from linkviz.quantify.changes import ChangeTable
from linkviz.quantify.method_agreement import MethodAgreement, method_agreement
from linkviz.quantify.population import label_vectors
from linkviz.quantify.pipeline import sweep_changes
from linkviz.tuning.perturbations import effect_sizes
from linkviz.tuning.sweep import SweepResult, run_sweep
from linkviz.world import PartSegmentingWorld, World

__all__ = ["DissectionData", "ExploreData", "PopulationData", "Unavailable", "segmenter_part_iou"]

class Unavailable(LookupError):
    """What a tab needs cannot be made for this world; the message says why."""


@dataclass(frozen=True)
class PopulationData:
    """A change table and the segmenter that measured it, for :class:`linkviz.widgets.PopulationDashboard`.

    Attributes
    ----------
    table : ChangeTable
    segmenter : callable, optional
        Part masks of latents ``[N, num_ws, w_dim]`` (``segment_from="ws"``) or of images
        (``segment_from="images"``), for the part overlay of the dashboard's tuner.
    part_labels : tuple of str, optional
    segment_from : {"ws", "images"}
    part_iou : dict of str to float, optional
        The segmenter's measured IoU per part, for the legend.
    """

    table: ChangeTable
    segmenter: Callable[[Any], np.ndarray] | None = None
    part_labels: tuple[str, ...] | None = None
    segment_from: str = "ws"

    @property
    def part_iou(self) -> dict[str, float] | None:
        """The segmenter's IoU per part on held-out generated images, if it says (see :func:`segmenter_part_iou`)."""
        return segmenter_part_iou(self.segmenter)


@dataclass(frozen=True)
class DissectionData:
    """A dissection (with top images) of the layer whose units are r, its probe and the layer's name."""

    result: DissectionResult
    probe: ProbeDataset
    layer: str = ""


class ExploreData:
    """The linked model, sweeps and dissections behind the explorer app, each made once, on first use.

    Getters are thread-safe: two tabs opening at once wait for one build of what they share.

    Parameters
    ----------
    world : World
        The models to explore.
    cache_dir : path, optional
        Cache root (default :func:`linkviz.default_cache_root`); the app's files go to its subfolders.
    device : str or torch.device, optional
        Where latents are made and the link, sweep, segmenter and dissection run; default the world's generator's
        device (a world loaded with ``device="auto"`` is on the GPU when there is one).
    samples_per_class : int
        Pairs per class to fit the link on (see :func:`linkviz.build_linked_model`).
    seed : int
        Seed of the pairs; held-out pairs, segmenter and probe use seeds derived from it.
    test_samples_per_class : int
        Held-out pairs per class for the link-quality tab.
    sweep_units, sweep_seeds, sweep_steps : int
        Size of the population sweep: the units with the largest effect, base examples, values per unit.
    segmenter_per_class : int
        Labelled generated images per class of the world's part segmenter (the toy world's reaches mIoU >= 0.85
        on generated images of every class but flowers with 10; its IoU per part, measured on 10 held-out
        generated images per class, is shown in the part legends).
    probe_samples_per_class : int
        Toy probe renders per class for the dissection.
    """

    def __init__(self, world: World, *, cache_dir: str | os.PathLike[str] | None = None,
                 device: str | torch.device | None = None, samples_per_class: int = 32, seed: int = 0,
                 test_samples_per_class: int = 4, sweep_units: int = 10, sweep_seeds: int = 3, sweep_steps: int = 5,
                 segmenter_per_class: int = 10, probe_samples_per_class: int = 20) -> None:
        for name, value in (("samples_per_class", samples_per_class), ("test_samples_per_class",
                            test_samples_per_class), ("sweep_units", sweep_units), ("sweep_seeds", sweep_seeds),
                            ("sweep_steps", sweep_steps), ("segmenter_per_class", segmenter_per_class),
                            ("probe_samples_per_class", probe_samples_per_class)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1; got {value}")
        self.world = world
        self.class_names = tuple(world.class_names)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
        self.device = run_device(device, world.generator)
        self.samples_per_class, self.seed = int(samples_per_class), int(seed)
        self.test_samples_per_class = int(test_samples_per_class)
        self.sweep_units, self.sweep_seeds, self.sweep_steps = int(sweep_units), int(sweep_seeds), int(sweep_steps)
        self.segmenter_per_class = int(segmenter_per_class)
        self.probe_samples_per_class = int(probe_samples_per_class)
        self._lock = threading.RLock()
        self._made: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ExploreData({type(self.world).__name__}, cache_dir={str(self.cache_dir)!r}, made={self.made})"

    # --- bookkeeping ---

    @property
    def made(self) -> tuple[str, ...]:
        """Names of the things made (or provided) so far, in that order."""
        return tuple(self._made)

    def provide(self, **things: Any) -> ExploreData:
        """Use these instead of making them, e.g. ``provide(dissection=DissectionData(...))`` with your own results.

        Keys are getter names: ``linked``, ``test_pairs``, ``segmenter``, ``sweep``, ``population``, ``probe``,
        ``dissection``. A provided ``population`` or ``dissection`` makes its tabs available for any world.
        Returns self.
        """
        unknown = sorted(set(things) - set(_GETTERS))
        if unknown:
            raise ValueError(f"unknown names {unknown}; ExploreData makes {list(_GETTERS)}")
        with self._lock:
            self._made.update(things)
        return self

    def steps(self, *needs: str) -> tuple[str, ...]:
        """The getters to call, in order, to have ``needs`` made: what each needs first, then itself; nothing for
        what is made (or provided) already."""
        order: list[str] = []
        for need in needs:
            if need not in _GETTERS:
                raise ValueError(f"unknown name {need!r}; ExploreData makes {list(_GETTERS)}")
            if need in self._made:
                continue
            for name in (*self.steps(*_DEPENDS.get(need, ())), need):
                if name not in order:
                    order.append(name)
        return tuple(order)

    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            return self._made[name]

    def can_make(self, what: str) -> bool:
        """Whether the world has the capability ``what`` needs (a part segmenter, a probe set): ``what`` is
        "population" or "dissection", or a getter name (``segmenter`` and ``sweep`` need what "population" needs,
        ``probe`` what "dissection" needs)."""
        need = _CAPABILITY.get(what, what)
        if need not in ("population", "dissection"):
            return True
        return isinstance(self.world, PartSegmentingWorld if need == "population" else ProbingWorld)

    def unavailable(self, what: str) -> str | None:
        """Why ``what`` ("population" or "dissection") cannot be made for this world, or None if it can."""
        if what not in ("population", "dissection"):
            raise ValueError(f"what must be 'population' or 'dissection'; got {what!r}")
        if self.can_make(what) or what in self._made:
            return None
        kind = type(self.world).__name__
        if what == "population":
            return (f"The population view measures how every part of the generated images changes, so it needs a "
                    f"part segmenter. linkviz trains one from the toy world's part ground truth; {kind} has none. "
                    "Paint a few labels with LabelPainter or cluster generator features (notebooks/02_population."
                    "ipynb), then open PopulationDashboard with your change table.")
        return (f"Network Dissection needs a probe set with concept labels; linkviz ships one for the toy world "
                f"only, and {kind}'s classifier does not see toy renders. Dissect with your own Broden-format probe "
                "(linkviz.dissection) and open DissectionBrowser / UnitCard with the result.")

    def _require(self, what: str) -> None:
        """Raise Unavailable (saying why) unless the world can make what ``what`` needs."""
        if not self.can_make(what):
            raise Unavailable(self.unavailable(what) or f"{what} needs a world with that capability")

    # --- what the link tabs need ---

    def linked(self) -> LinkedModel:
        """Pairs sampled from the world and the ridge link fitted on them (pairs cached on disk)."""
        return self._once("linked", lambda: build_linked_model(
            self.world, samples_per_class=self.samples_per_class, seed=self.seed, cache_dir=self.cache_dir,
            device=self.device))

    def test_pairs(self) -> PairSet:
        """Held-out pairs (another seed) of every class, for the link-quality tab."""
        def make() -> PairSet:
            generator = self.world.generator
            if generator.c_dim:
                classes, per_class = list(range(generator.c_dim)), self.test_samples_per_class
            else:
                classes, per_class = [0], self.test_samples_per_class * len(self.class_names)
            return sample_pairs(generator, self.world.classifier, classes=classes, samples_per_class=per_class,
                                seed=self.seed + 1, device=self.device, cache_dir=self.cache_dir, progress=False)
        return self._once("test_pairs", make)

    def strongest_unit(self) -> int:
        """The unit whose tuning moves the latent most (largest effect size)."""
        linked = self.linked()
        return int(np.argmax(effect_sizes(linked.link, linked.stats)))

    # --- the population tab (toy world) ---

    def segmenter(self) -> Callable[[Any], np.ndarray] | None:
        """The toy world's few-shot part segmenter (latents -> part masks), trained once and cached on disk."""
        def make() -> Callable[[Any], np.ndarray]:
            self._require("population")
            return self.world.part_segmenter(per_class=self.segmenter_per_class, test_per_class=10,
                                             probe_per_class=10 * self.segmenter_per_class, seed=self.seed,
                                             cache_dir=self.cache_dir / "segmenters", device=self.device)
        return self._once("segmenter", make)

    def sweep(self) -> SweepResult | None:
        """The ``sweep_units`` strongest units tuned through ``sweep_steps`` values on base examples of every class."""
        def make() -> SweepResult:
            self._require("population")
            linked = self.linked()
            units = np.argsort(-effect_sizes(linked.link, linked.stats), kind="stable")[:self.sweep_units].tolist()
            seeds = list(linked.example_seeds(self.sweep_seeds))  # round-robin over the classes
            r_base = np.asarray(linked.pairs.r)[seeds]
            stats = linked.stats
            key = hash_arguments(weight=linked.link.weight, bias=linked.link.bias,
                                 latent_norm=linked.link.latent_norm, r_base=r_base, units=units,
                                 n_steps=self.sweep_steps, generator=hash_state(linked.generator),
                                 stats=[stats.min, stats.max, stats.mean, stats.std])
            return run_sweep(linked.link, linked.generator, r_base, stats=linked.stats,
                             out_dir=self.cache_dir / "explore-sweeps" / key, units=units, n_steps=self.sweep_steps,
                             store_w=True, device=self.device, progress=False)
        return self._once("sweep", make)

    def population(self) -> PopulationData:
        """The sweep's change table: every part's area, luminance, ... per unit, seed and step (cached on disk)."""
        def make() -> PopulationData:
            self._require("population")
            part_names = tuple(self.world.part_names)
            segment, sweep = self.segmenter(), self.sweep()
            identity = "toy-part-segmenter-" + hash_state(segment.segmenter)
            table = sweep_changes(sweep, _latent_lookup(sweep, segment, self.world.generator.num_ws),
                                  part_names, segmenter_id=identity, cache_dir=self.cache_dir, progress=False)
            return PopulationData(table=table, segmenter=segment, part_labels=part_names)
        return self._once("population", make)

    # --- the dissection and unit-card tabs (toy world) ---

    def probe(self) -> ProbeDataset:
        """The toy probe set: renders with object, part, colour, texture and scene labels (renders cached)."""
        def make() -> ProbeDataset:
            self._require("dissection")
            return self.world.dissection_probe(self.probe_samples_per_class, seed=self.seed,
                                               cache_dir=self.cache_dir / "probe-renders")
        return self._once("probe", make)

    def dissection(self) -> DissectionData:
        """Network Dissection of the classifier's last conv stage on the probe (cached on disk)."""
        def make() -> DissectionData:
            self._require("dissection")
            probe, layer = self.probe(), self.world.dissection_layer
            result = dissect(self.world.classifier, layer, probe, top_k=5, device=self.device,
                             cache_dir=self.cache_dir, progress=False)
            return DissectionData(result=result, probe=probe, layer=layer)
        return self._once("dissection", make)

    def agreement(self) -> MethodAgreement | None:
        """Whether dissection's label and tuning's strongest change agree on each unit of the population
        (:func:`~linkviz.quantify.method_agreement.method_agreement` on the world's ``concept_vocabulary``), or None
        unless the world has a concept vocabulary and both the population and the dissection are made (the app
        makes the dissection for the population tab when the world can)."""
        vocabulary = getattr(self.world, "concept_vocabulary", None)
        if vocabulary is None or not {"population", "dissection"} <= set(self._made):
            return None
        def make() -> MethodAgreement:
            return method_agreement(vocabulary=vocabulary(), dissection=self.dissection().result.to_frame(),
                                    tuning=label_vectors(self.population().table))
        return self._once("agreement", make)


_GETTERS = ("linked", "test_pairs", "segmenter", "sweep", "population", "probe", "dissection")
_DEPENDS = {"sweep": ("linked",), "population": ("segmenter", "sweep"), "dissection": ("probe",)}
_CAPABILITY = {"segmenter": "population", "sweep": "population", "probe": "dissection"}


def segmenter_part_iou(segmenter: Any) -> dict[str, float] | None:
    """The ``part_iou`` a segmenter carries (part name -> IoU on held-out generated images), or None."""
    part_iou = getattr(segmenter, "part_iou", None)
    return dict(part_iou) if part_iou else None


def _latent_lookup(sweep: SweepResult, segment_ws: Callable[[Any], np.ndarray], num_ws: int
                   ) -> Callable[[np.ndarray], np.ndarray]:
    """An images -> masks function for :func:`~linkviz.quantify.sweep_changes` from a latents -> masks segmenter,
    through the latents the sweep stored next to its images."""
    latent_of: dict[bytes, np.ndarray] = {}
    for unit in sweep.units:
        images, latents = sweep.images(unit), sweep.latents(unit)
        for image, latent in zip(images.reshape(-1, *images.shape[2:]), latents.reshape(-1, latents.shape[-1]),
                                 strict=True):
            latent_of[image.tobytes()] = latent

    def segment(images: np.ndarray) -> np.ndarray:
        w = torch.from_numpy(np.stack([latent_of[image.tobytes()] for image in images]))
        return np.asarray(segment_ws(w[:, None, :].expand(-1, num_ws, -1)))

    return segment
