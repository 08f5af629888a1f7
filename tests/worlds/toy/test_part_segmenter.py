"""The toy world's few-shot part segmenter: trained once here (20-40 s on one loaded core), scored per class.

Measured with the defaults (10 labelled images per class, seed 0) on the 40 held-out images per class of the
built-in table: mushroom 0.935, tree 0.935, house 0.893, flower 0.737, snowman 0.952 mIoU. Over draws of 40
held-out images a class's mIoU varies with standard deviation under 0.01 (benchmarks/README.md, "Toy part
segmenter"), so the bar 0.85 - 0.05 leaves several of them. Flowers are held to a lower bar: the generator does
not draw their stems and petals where the renderer does, and even the same head fitted on 40 held-out flowers and
scored on them reaches only 0.749.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from single_thread import single_thread  # noqa: F401  (autouse: one torch thread)

import linkviz
from linkviz.worlds.toy import CLASS_NAMES, PART_NAMES
from linkviz.worlds.toy.part_segmenter import generated_parts, toy_class_labels, toy_part_segmenter

TARGET, MARGIN = 0.85, 0.05
#: The generator-limited class and its bar (measured 0.737; fitting held-out flowers themselves gives 0.749).
FLOWER_BAR = 0.68


@pytest.fixture(scope="module")
def world():
    return linkviz.load_toy_world()


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures are built before the function-scoped single_thread
    try:
        cache = tmp_path_factory.mktemp("part_segmenter")
        segment, table = toy_part_segmenter(world, cache_dir=cache)
    finally:
        torch.set_num_threads(threads)
    return segment, table, cache


def test_toy_class_labels_are_background_and_each_class_parts():
    labels = toy_class_labels()
    assert list(labels) == list(CLASS_NAMES)
    assert [PART_NAMES[i] for i in labels["mushroom"]] == ["background", "stem", "cap"]
    assert [PART_NAMES[i] for i in labels["house"]] == ["background", "wall", "roof", "door"]


def test_every_class_reaches_its_miou_on_40_held_out_images(trained):
    _, table, _ = trained
    assert (table.n_images == 40).all()
    per_class = table.groupby("class", sort=False).miou.first()
    assert list(per_class.index) == list(CLASS_NAMES)
    for name, miou in per_class.items():
        assert miou >= (FLOWER_BAR if name == "flower" else TARGET - MARGIN), (name, miou)
    assert table.attrs["probe_accuracy"] >= 0.98


def test_segment_from_ws_shows_only_the_parts_of_each_samples_class(world, trained):
    segment, _, _ = trained
    samples = generated_parts(world, per_class=2, seed=99, masks=False)
    masks = segment(samples.ws)
    assert isinstance(masks, np.ndarray) and masks.dtype == np.int64 and masks.shape == (10, 64, 64)
    assert segment(samples.ws[:0]).shape == (0, 64, 64)
    labels = list(toy_class_labels().values())
    for mask, k in zip(masks, samples.classes.tolist()):
        assert set(np.unique(mask)) <= set(labels[k])
    # a single w per sample (as UnitTuner holds them) and explicit classes give the same masks here
    np.testing.assert_array_equal(segment(samples.ws[:4, 0]), masks[:4])
    np.testing.assert_array_equal(segment(samples.ws[:4], samples.classes[:4]), masks[:4])
    # forcing the tree class onto mushrooms turns their caps into crowns, never the other way round
    mushrooms = samples.classes == CLASS_NAMES.index("mushroom")
    as_trees = segment(samples.ws[mushrooms], [CLASS_NAMES.index("tree")] * int(mushrooms.sum()))
    assert PART_NAMES.index("cap") not in as_trees


def test_a_second_call_loads_the_cached_segmenter_and_table(world, trained):
    segment, table, cache = trained
    files = list(cache.glob("toy_part_segmenter_*.safetensors"))
    assert len(files) == 1
    again, cached_table = toy_part_segmenter(world, cache_dir=cache)
    assert cached_table.attrs == table.attrs
    np.testing.assert_allclose(cached_table.miou, table.miou)
    assert cached_table[["class", "part"]].equals(table[["class", "part"]])
    samples = generated_parts(world, per_class=1, seed=7, masks=False)
    np.testing.assert_array_equal(again(samples.ws), segment(samples.ws))


def test_the_concept_segmenter_names_each_generated_images_class_and_background_colour(world, trained):
    """On generated samples with known factors: the object concept is the sample's class, the scene concept the
    colour name of its rendered background, each in at least 9 of 10 images."""
    from linkviz.images import to_uint8
    from linkviz.worlds.toy.concept_segmenter import ToyConceptSegmenter, toy_concept_labels
    from linkviz.worlds.toy.concepts import COLOUR_NAMES, colour_name_mask

    segment, _, _ = trained
    generator = world.generator
    classes = torch.arange(20) % len(CLASS_NAMES)
    z = torch.randn(20, generator.z_dim, generator=torch.Generator().manual_seed(7))
    c = torch.nn.functional.one_hot(classes, generator.c_dim).float()
    ws = generator.mapping(z, c)
    with torch.no_grad():
        images = to_uint8(generator.synthesis(ws).permute(0, 2, 3, 1).numpy())
    masks = ToyConceptSegmenter(segment)(images, ws[:, 0])
    labels = toy_concept_labels()
    assert masks.shape == (20, len(labels), *images.shape[1:3]) and masks.dtype == bool

    object_area = masks[:, :len(CLASS_NAMES)].sum(axis=(2, 3))
    assert (object_area.argmax(axis=1) == classes.numpy()).mean() >= 0.9

    true_colours, true_parts = colour_name_mask(world.true_images(z, c)), world.true_parts(z, c)
    true_scene = [np.bincount(colours[parts == 0], minlength=len(COLOUR_NAMES)).argmax()
                  for colours, parts in zip(true_colours, true_parts)]
    scene = masks[:, [labels.index(f"{name}-s") for name in COLOUR_NAMES]].all(axis=(2, 3)).argmax(axis=1)
    assert (scene == np.array(true_scene)).mean() >= 0.9
