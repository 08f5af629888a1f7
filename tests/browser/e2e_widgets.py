"""Every linkviz widget on small, fast inputs, built inside the Jupyter kernel of the browser tests.

The notebooks of the browser tests put the tests folder and this folder on ``sys.path`` and call these builders
(``import e2e_widgets as e2e; tuner = e2e.unit_tuner(); tuner``). The inputs are the fake worlds of the unit
tests (milliseconds per view); only :func:`world_browser` runs the committed toy world, whose renders are worth
a look in the screenshots.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import fake_dissection
import numpy as np
import pandas as pd
import torch
from fake_population import planted_table
from fake_world import FakeGenerator, FakeWorld, fake_classifier, identity_link

import linkviz.widgets as lw
from linkviz.dissection import dissect
from linkviz.linking import LinkedModel, build_linked_model
from linkviz.pairs import sample_pairs
from linkviz.quantify.method_agreement import concept_vocabulary, method_agreement

torch.set_num_threads(1)


@functools.cache
def linked() -> LinkedModel:
    """The fake world (r has 3 units) with a ridge link fitted on 24 pairs."""
    world = FakeWorld(classifier=fake_classifier(), generator=FakeGenerator(offset=2.0))
    return build_linked_model(world, samples_per_class=8, truncation_psi=1.0, seed=0)


def world_browser() -> lw.WorldBrowser:
    return lw.WorldBrowser(n_samples=4)  # the committed toy world


def unit_tuner() -> lw.UnitTuner:
    return lw.UnitTuner(linked(), seeds=(0, 1, 2), unit=0)


def link_explorer() -> lw.LinkExplorer:
    model = linked()
    test_pairs = sample_pairs(model.generator, model.classifier, classes=[0], samples_per_class=10, seed=1,
                              truncation_psi=1.0, progress=False)
    return lw.LinkExplorer(model, test_pairs, per_page=4)


def counterfactual_explorer() -> lw.CounterfactualExplorer:
    exact = dataclasses.replace(linked(), link=identity_link())  # counterfactuals succeed
    return lw.CounterfactualExplorer(exact, max_steps=200, n_alphas=5, top_k=2, origin=0, target=1)


def population_dashboard() -> lw.PopulationDashboard:
    """Twelve planted units (ear, eye, nose changers in turn) with an agreement: dissection names the part each
    unit changes, except units 102 and 105 (named "mouth"); LaViSE names the ear for the first four."""
    units = np.arange(100, 112)
    parts = np.array(["ear", "eye", "nose"])[np.arange(12) % 3]
    dissected = np.where(np.isin(units, (102, 105)), "mouth", parts)
    agreement = method_agreement(
        vocabulary=concept_vocabulary(parts=("ear", "eye", "nose", "mouth")),
        dissection=pd.DataFrame({"unit": units, "label": dissected, "iou": 0.2}),
        lavise=pd.DataFrame({"unit": units[:4], "rank": 0, "word": "ear"}),
        tuning=pd.DataFrame({"unit": units, "label": parts, "metric": "area"}))
    return lw.PopulationDashboard(planted_table(units), n_clusters=3, perplexity=3, max_iter=250,
                                  agreement=agreement)


def tsne_target(dashboard: lw.PopulationDashboard) -> str:
    """JSON naming the unit whose tSNE point is farthest from the others (not the selected one) and where it is,
    as fractions of the canvas from its left and top edges."""
    points = dashboard._embedding_axes.transData.transform(dashboard.embedding.coordinates)
    gaps = np.hypot(*(points[:, None] - points[None]).transpose(2, 0, 1))
    np.fill_diagonal(gaps, np.inf)
    candidates = [i for i in np.argsort(-gaps.min(axis=1))
                  if dashboard.embedding.units[i] != dashboard.units.value]
    x, y = points[candidates[0]]
    box = dashboard.embedding_canvas.figure.bbox
    return json.dumps({"unit": int(dashboard.embedding.units[candidates[0]]), "left": float(x / box.width),
                       "top": float(1 - y / box.height)})


def painter_images() -> np.ndarray:
    """Two 48 x 48 images of four flat quadrants (the second upside down), with a little noise."""
    rng = np.random.default_rng(0)
    quadrants = np.array([[(200, 40, 40), (40, 200, 40)], [(40, 40, 200), (220, 220, 60)]], np.float64)
    base = np.kron(quadrants, np.ones((24, 24, 1)))
    return np.stack([np.clip(image + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)
                     for image in (base, base[::-1])])


def label_painter() -> lw.LabelPainter:
    return lw.LabelPainter(painter_images(), label_names=("background", "ear", "eye"), n_segments=16)


def dissection_browser() -> lw.DissectionBrowser:
    probe, model = fake_dissection.square_probe(), fake_dissection.red_model()
    results = {name: dissect(model, name, probe, quantile=0.1, progress=False, top_k=4) for name in ("0", "1")}
    return lw.DissectionBrowser(results, probe, k=3)


def filter_explainer() -> lw.FilterExplainer:
    explanation = fake_dissection.filter_explanation.__wrapped__()  # the pytest fixture's plain function
    return lw.FilterExplainer(explanation, fake_dissection.colour_images(6), model=fake_dissection.colour_model(),
                              k=2)


def unit_card() -> lw.UnitCard:
    result, probe = fake_dissection.colour_world()
    explanation = fake_dissection.word_explanation.__wrapped__()
    return lw.UnitCard(result, probe, linked(), explanation=explanation, unit=0, k=2, seeds=(0, 1))
