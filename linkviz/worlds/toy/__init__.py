"""The embedded toy world: procedural renders with ground truth, and the models trained on them."""

from linkviz.worlds.toy.concepts import COLOUR_NAMES, TEXTURE_CONCEPTS, colour_name_mask
from linkviz.worlds.toy.dataset import decorrelate_background, flip_shortcut, render_set
from linkviz.worlds.toy.factors import (
    CLASS_NAMES,
    CLASS_PARTS,
    PART_NAMES,
    SHORTCUT_CLASS,
    TEXTURE_NAMES,
    FactorTable,
    factor_vector,
    factors_from_uniform,
    sample_factors,
)
from linkviz.worlds.toy.probe import TOY_CATEGORIES, build_toy_probe, toy_label_names
from linkviz.worlds.toy.render import RenderBatch, render, render_parallel
from linkviz.worlds.toy.world import TOY_CLASSIFIER_SPEC, ToyWorld, load_toy_world

__all__ = [
    "CLASS_NAMES",
    "CLASS_PARTS",
    "COLOUR_NAMES",
    "PART_NAMES",
    "SHORTCUT_CLASS",
    "TEXTURE_CONCEPTS",
    "TEXTURE_NAMES",
    "TOY_CATEGORIES",
    "TOY_CLASSIFIER_SPEC",
    "FactorTable",
    "RenderBatch",
    "ToyWorld",
    "build_toy_probe",
    "colour_name_mask",
    "decorrelate_background",
    "factor_vector",
    "factors_from_uniform",
    "flip_shortcut",
    "load_toy_world",
    "render",
    "render_parallel",
    "render_set",
    "sample_factors",
    "toy_label_names",
]
