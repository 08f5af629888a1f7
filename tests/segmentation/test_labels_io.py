"""Painted labels on disk: round trip, and clear errors for label ids without a name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from linkviz.segmentation import LABELS_FILE, LabelFileError, load_labels, save_labels
from linkviz.segmentation.labels_io import LabelSetConflictError, check_label_names

LABEL_NAMES = ("background", "cap", "stem")


@pytest.fixture
def masks() -> np.ndarray:
    masks = np.zeros((2, 6, 5), np.int64)
    masks[0, 1:3, 1:4] = 1
    masks[0, 3:, 2] = 2
    masks[1, 0, :] = 2
    return masks


def test_round_trip(tmp_path, masks):
    paths = save_labels(tmp_path / "labels", masks, label_names=LABEL_NAMES, names=["seed0", "seed7"])
    assert [p.name for p in paths] == ["seed0.png", "seed7.png"]
    with Image.open(paths[0]) as image:
        assert image.mode == "L"
    index = json.loads((tmp_path / "labels" / LABELS_FILE).read_text())
    assert index["label_names"] == list(LABEL_NAMES)
    loaded = load_labels(tmp_path / "labels")
    np.testing.assert_array_equal(loaded.masks, masks)
    assert loaded.masks.dtype == np.int64
    assert loaded.label_names == LABEL_NAMES
    assert loaded.names == ("seed0", "seed7")
    assert len(loaded) == 2


def test_default_names_and_list_input(tmp_path, masks):
    save_labels(tmp_path, list(masks), label_names=LABEL_NAMES)
    assert load_labels(tmp_path).names == ("000", "001")


def test_saving_a_label_id_without_a_name_raises(tmp_path, masks):
    masks[1, 2, 2] = 3
    with pytest.raises(LabelFileError, match=r"label map 'b': label ids \[3\] are not in \[0, 3\)"):
        save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["a", "b"])
    assert not (tmp_path / LABELS_FILE).exists()


def test_loading_a_map_with_unnamed_ids_names_the_file(tmp_path, masks):
    save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["a", "b"])
    painted = masks[1].astype(np.uint8)
    painted[0, 0] = 7
    Image.fromarray(painted).save(tmp_path / "b.png")
    with pytest.raises(LabelFileError, match=r"b\.png: label ids \[7\]"):
        load_labels(tmp_path)


def test_colour_coded_masks_and_bad_files_raise(tmp_path, masks):
    save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["a", "b"])
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(LabelFileError, match=r"a\.png: label maps must be 8-bit greyscale"):
        load_labels(tmp_path)
    (tmp_path / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"a\.png"):
        load_labels(tmp_path)
    (tmp_path / LABELS_FILE).write_text("{not json")
    with pytest.raises(LabelFileError, match=LABELS_FILE):
        load_labels(tmp_path)
    with pytest.raises(FileNotFoundError, match=LABELS_FILE):
        load_labels(tmp_path / "missing")


def test_bad_arguments_raise(tmp_path, masks):
    with pytest.raises(ValueError, match="distinct"):
        save_labels(tmp_path, masks, label_names=["background", "background"])
    with pytest.raises(ValueError, match="distinct image names"):
        save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["a"])
    with pytest.raises(ValueError, match="file name"):
        save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["../a", "b"])
    with pytest.raises(ValueError, match="2-D integer"):
        save_labels(tmp_path, masks.astype(float), label_names=LABEL_NAMES)


def test_a_label_set_needs_the_background_and_a_part(tmp_path, masks):
    assert check_label_names(["background", "cap"]) == ("background", "cap")
    with pytest.raises(ValueError, match="between 2 and 256 label names"):
        check_label_names(["background"])
    with pytest.raises(ValueError, match="between 2 and 256 label names"):
        check_label_names([f"part{i}" for i in range(257)])
    with pytest.raises(ValueError, match="distinct non-empty"):
        check_label_names(["background", ""])
    with pytest.raises(ValueError, match="between 2"):
        save_labels(tmp_path, np.zeros_like(masks), label_names=["background"])
    save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["a", "b"])
    index = json.loads((tmp_path / LABELS_FILE).read_text())
    (tmp_path / LABELS_FILE).write_text(json.dumps({**index, "label_names": ["background"]}))
    with pytest.raises(LabelFileError, match="between 2"):
        load_labels(tmp_path)


OTHER_NAMES = ("background", "wall", "roof", "door")


def test_a_folder_with_another_label_set_is_refused_and_left_alone(tmp_path, masks):
    save_labels(tmp_path, masks, label_names=OTHER_NAMES, names=["house0", "house1"])
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with pytest.raises(LabelSetConflictError) as caught:
        save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["house0", "seed7"])
    message = str(caught.value)
    assert str(tmp_path) in message and str(list(OTHER_NAMES)) in message and str(list(LABEL_NAMES)) in message
    assert "overwrite=True" in message and isinstance(caught.value, ValueError)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    (tmp_path / LABELS_FILE).write_text("{not json")
    with pytest.raises(LabelSetConflictError, match="cannot be read"):
        save_labels(tmp_path, masks, label_names=LABEL_NAMES)


def test_overwrite_replaces_the_label_set_and_removes_its_orphans(tmp_path, masks):
    save_labels(tmp_path, masks, label_names=OTHER_NAMES, names=["house0", "house1"])
    (tmp_path / "notes.txt").write_text("mine")  # not a listed map: never removed
    save_labels(tmp_path, masks[:1], label_names=LABEL_NAMES, names=["house0"], overwrite=True)
    loaded = load_labels(tmp_path)
    assert loaded.label_names == LABEL_NAMES and loaded.names == ("house0",)
    np.testing.assert_array_equal(loaded.masks, masks[:1])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["house0.png", LABELS_FILE, "notes.txt"]


def test_the_same_label_set_adds_and_updates_maps(tmp_path, masks):
    save_labels(tmp_path, masks, label_names=LABEL_NAMES, names=["a", "b"])
    updated = masks[::-1].copy()
    save_labels(tmp_path, updated, label_names=LABEL_NAMES, names=["b", "c"])
    loaded = load_labels(tmp_path)
    assert loaded.names == ("a", "b", "c")  # kept, replaced, added
    np.testing.assert_array_equal(loaded.masks, np.stack([masks[0], updated[0], updated[1]]))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "b.png", "c.png", LABELS_FILE]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failure_midway_leaves_the_old_label_set_intact(tmp_path, masks, monkeypatch, overwrite):
    names = OTHER_NAMES if overwrite else LABEL_NAMES
    save_labels(tmp_path, masks, label_names=names, names=["a", "b"])
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    save = Image.Image.save
    calls = []

    def fail_on_the_second_image(image, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return save(image, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", fail_on_the_second_image)
    with pytest.raises(OSError, match="disk full"):
        save_labels(tmp_path, masks[::-1] + 0, label_names=LABEL_NAMES, names=["a", "c"], overwrite=overwrite)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # no temporary files left
    loaded = load_labels(tmp_path)
    assert loaded.label_names == names and loaded.names == ("a", "b")
    np.testing.assert_array_equal(loaded.masks, masks)
