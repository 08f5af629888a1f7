"""Broden folders: round trip, the toy probe, and malformed folders."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from linkviz.dissection import BrodenFormatError, ProbeDataset, read, write
from linkviz.worlds.toy import TOY_CATEGORIES, toy_label_names


def assert_same_probe(actual: ProbeDataset, expected: ProbeDataset) -> None:
    np.testing.assert_array_equal(actual.images, expected.images)
    assert actual.label_names == expected.label_names
    assert actual.categories == expected.categories
    assert actual.segmentation_shape == expected.segmentation_shape
    assert set(actual.pixel_labels) == set(expected.pixel_labels)
    assert set(actual.image_labels) == set(expected.image_labels)
    for category, labels in expected.pixel_labels.items():
        np.testing.assert_array_equal(actual.pixel_labels[category], labels)
    for category, labels in expected.image_labels.items():
        np.testing.assert_array_equal(actual.image_labels[category], labels)
    np.testing.assert_array_equal(actual.coverage(), expected.coverage())
    assert actual.fingerprint == expected.fingerprint


def test_round_trip(small_probe, tmp_path):
    write(small_probe, tmp_path)
    assert_same_probe(read(tmp_path), small_probe)
    with open(tmp_path / "index.csv") as handle:
        row = next(csv.DictReader(handle))
    assert row["scene"].isdigit() and row["color"].count(".png") == 2  # whole-image label, two label maps
    label_map = np.asarray(Image.open(tmp_path / "images" / row["color"].split(";")[0]), dtype=np.int32)
    np.testing.assert_array_equal(label_map[..., 0] + 256 * label_map[..., 1], small_probe.pixel_labels["color"][0, 0])
    with pytest.raises(FileExistsError):
        write(small_probe, tmp_path)


def test_labels_above_255_use_the_green_channel(tmp_path):
    names = ("-",) + tuple(f"c{i}" for i in range(1, 301))
    labels = np.array([[[[0, 299], [256, 1]]]])
    probe = ProbeDataset(images=np.zeros((1, 2, 2, 3), np.uint8), label_names=names, categories=("object",),
                         pixel_labels={"object": labels})
    assert_same_probe(read(write(probe, tmp_path)), probe)


def test_read_subset_of_rows_and_categories(small_probe, tmp_path):
    write(small_probe, tmp_path)
    probe = read(tmp_path, categories=["scene", "object"], rows=[4, 1])
    assert probe.categories == ("scene", "object") and len(probe) == 2
    np.testing.assert_array_equal(probe.images, small_probe.images[[4, 1]])
    np.testing.assert_array_equal(probe.image_labels["scene"], small_probe.image_labels["scene"][[4, 1]])
    with pytest.raises(ValueError, match="unknown categories"):
        read(tmp_path, categories=["material"])


def test_toy_probe_categories_and_export(toy_probe, tmp_path):
    assert toy_probe.categories == TOY_CATEGORIES and len(toy_probe) == 5
    assert toy_probe.label_names == toy_label_names()
    names = np.array(toy_probe.label_names)
    objects = toy_probe.pixel_labels["object"][:, 0]
    parts = toy_probe.pixel_labels["part"][:, 0]
    np.testing.assert_array_equal(objects > 0, parts > 0)  # the class mask is the object's foreground
    assert [set(names[np.unique(o[o > 0])]) for o in objects] == [{"mushroom"}, {"tree"}, {"house"}, {"flower"},
                                                                  {"snowman"}]
    assert (toy_probe.pixel_labels["color"] > 0).all()  # every pixel has a colour
    assert all(name.endswith("-s") for name in names[toy_probe.image_labels["scene"].ravel()])
    assert toy_probe.image_labels["scene"].shape == (5, 1)
    write(toy_probe, tmp_path)
    assert_same_probe(read(tmp_path), toy_probe)


@pytest.fixture
def broden_dir(small_probe, tmp_path):
    return write(small_probe, tmp_path / "broden")


def index_rows(directory):
    with open(directory / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def rewrite_index(directory, rows):
    with open(directory / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("name", ["index.csv", "label.csv", "category.csv", "c_object.csv"])
def test_missing_csv_file_is_named(broden_dir, name):
    (broden_dir / name).unlink()
    with pytest.raises(FileNotFoundError, match=name.replace(".", r"\.")):
        read(broden_dir)


def test_missing_label_map_names_the_row(broden_dir):
    rows = index_rows(broden_dir)
    label_map = rows[2]["object"]
    (broden_dir / "images" / label_map).unlink()
    with pytest.raises(FileNotFoundError, match=rf"index.csv line 4 .*'object'.*{label_map}"):
        read(broden_dir)


def test_missing_image_names_the_row(broden_dir):
    shutil.move(broden_dir / "images" / index_rows(broden_dir)[0]["image"], broden_dir / "elsewhere.png")
    with pytest.raises(FileNotFoundError, match="index.csv line 2"):
        read(broden_dir)


def test_label_map_out_of_range_names_the_row(broden_dir):
    label_map = index_rows(broden_dir)[3]["color"].split(";")[1]
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1, 2] = (231, 3, 0)  # label 231 + 3 * 256 = 999
    Image.fromarray(rgb).save(broden_dir / "images" / label_map)
    with pytest.raises(BrodenFormatError, match=rf"index.csv line 5 .*'color'.*{label_map}.*label 999"):
        read(broden_dir)


def test_whole_image_label_out_of_range_names_the_row(broden_dir):
    rows = index_rows(broden_dir)
    rows[1]["scene"] = "42"
    rewrite_index(broden_dir, rows)
    with pytest.raises(BrodenFormatError, match="index.csv line 3 .*'scene'.*label 42"):
        read(broden_dir)


def test_label_map_of_wrong_size_names_the_row(broden_dir):
    label_map = index_rows(broden_dir)[0]["object"]
    Image.fromarray(np.zeros((5, 4, 3), np.uint8)).save(broden_dir / "images" / label_map)
    with pytest.raises(BrodenFormatError, match="index.csv line 2 .*5x4, but sh x sw is 4x4"):
        read(broden_dir)


def test_rows_of_different_sizes_are_rejected(broden_dir):
    rows = index_rows(broden_dir)
    rows[2]["sh"] = "2"
    rewrite_index(broden_dir, rows)
    with pytest.raises(BrodenFormatError, match="index.csv line 4 .*segmentation size 2x4 differs"):
        read(broden_dir)


def test_malformed_number_names_the_file(broden_dir):
    with open(broden_dir / "label.csv", "a") as handle:
        handle.write("seven,dog2,object(1),1,0.5,\n")
    with pytest.raises(BrodenFormatError, match="label.csv line 8: column 'number'"):
        read(broden_dir)


def test_probe_dataset_validation():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    names = ("-", "a", "b")
    with pytest.raises(ValueError, match=r"image 1: label 3 is out of range \[0, 2\]"):
        ProbeDataset(images=images, label_names=names, categories=("object",),
                     pixel_labels={"object": np.array([0, 3]).reshape(2, 1, 1, 1).repeat(4, 2).repeat(4, 3)})
    with pytest.raises(ValueError, match="mismatched probe resolution"):
        ProbeDataset(images=images, label_names=names, categories=("object", "part"),
                     pixel_labels={"object": np.zeros((2, 1, 4, 4), int), "part": np.zeros((2, 1, 8, 8), int)})
    with pytest.raises(ValueError, match="mismatched probe resolution: segmentation 4x2"):
        ProbeDataset(images=images, label_names=names, categories=("object",),
                     pixel_labels={"object": np.zeros((2, 1, 4, 2), int)})
    with pytest.raises(ValueError, match="not among categories"):
        ProbeDataset(images=images, label_names=names, categories=("object",),
                     image_labels={"scene": np.ones((2, 1), int)})
    with pytest.raises(ValueError, match="uint8"):
        ProbeDataset(images=images.astype(np.float32), label_names=names, categories=())


def test_primary_category_ties_go_to_the_later_category():
    coverage = np.array([[0, 0], [2.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    probe = ProbeDataset(images=np.zeros((1, 2, 2, 3), np.uint8), label_names=("-", "a", "b", "c"),
                         categories=("object", "part"), label_coverage=coverage)
    np.testing.assert_array_equal(probe.primary_categories(), [-1, 0, 1, -1])
    np.testing.assert_array_equal(probe.primary_categories(["object"]), [-1, 0, 0, -1])
