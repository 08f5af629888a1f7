"""Class-conditional prediction: restriction to a class's labels, the class vote, the latent class probe, and
the per-pixel head (pixel-sampled training, saved and loaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linkviz.segmentation import (
    PartSegmenter,
    class_label_mask,
    fit_latent_class_probe,
    load_part_segmenter,
    mean_iou,
    part_log_probs,
    predict_parts,
    save_part_segmenter,
    train_few_shot,
    vote_classes,
)

# Two classes over four labels: class 0 shows background and label 1, class 1 background and labels 2, 3.
CLASS_LABELS = [[0, 1], [0, 2, 3]]


def _identity_head(n_labels: int) -> PartSegmenter:
    """A linear per-pixel head whose logits are its input features."""
    head = PartSegmenter(n_labels, n_labels, channels=(), kernel_size=1)
    with torch.no_grad():
        head.net[0].weight.copy_(torch.eye(n_labels)[:, :, None, None])
        head.net[0].bias.zero_()
    return head.eval()


def test_class_label_mask_rows_are_the_labels_of_each_images_class():
    allowed = class_label_mask(np.array([1, 0, 1]), CLASS_LABELS, n_labels=4)
    expected = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 0], [1, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(allowed, expected)
    with pytest.raises(ValueError, match=r"class ids \[2\] outside \[0, 2\)"):
        class_label_mask([0, 2], CLASS_LABELS, n_labels=4)
    with pytest.raises(ValueError, match="at least one label"):
        class_label_mask([0], [[0, 4]], n_labels=4)


def test_restriction_picks_the_best_allowed_label_of_each_pixel():
    # One row of 3 pixels per image; logits over labels 0..3 chosen so that the unrestricted winner is a label
    # of the other class, and the runner-up differs between pixels.
    logits = torch.tensor([[5.0, 1.0, 3.0, 0.0],     # free: 0; class 0 -> 0; class 1 -> 0
                           [0.0, 2.0, 9.0, 1.0],     # free: 2; class 0 -> 1; class 1 -> 2
                           [1.0, 0.0, 2.0, 8.0]])    # free: 3; class 0 -> 0; class 1 -> 3
    features = logits.T.reshape(1, 4, 1, 3).repeat(2, 1, 1, 1)      # the same pixels in two images
    head = _identity_head(4)
    assert predict_parts(head, features).tolist() == [[[0, 2, 3]], [[0, 2, 3]]]
    allowed = class_label_mask([0, 1], CLASS_LABELS, n_labels=4)
    assert predict_parts(head, features, allowed_labels=allowed, batch_size=1).tolist() == [[[0, 1, 0]], [[0, 2, 3]]]
    shared = torch.tensor([True, True, False, False])                  # one row for every image
    assert predict_parts(head, features, allowed_labels=shared).tolist() == [[[0, 1, 0]], [[0, 1, 0]]]


def test_restriction_rejects_malformed_masks():
    head, features = _identity_head(4), torch.zeros(2, 4, 1, 3)
    with pytest.raises(ValueError, match="bool mask"):
        predict_parts(head, features, allowed_labels=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool mask"):
        predict_parts(head, features, allowed_labels=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"no label for images \[1\]"):
        predict_parts(head, features, allowed_labels=torch.tensor([[True] * 4, [False] * 4]))


def test_vote_picks_the_class_whose_labels_hold_the_probability_mass():
    features = torch.full((3, 4, 2, 2), -5.0)
    features[0, 1] = 5.0                       # image 0: label 1 everywhere -> class 0
    features[1, 3] = 5.0                       # image 1: label 3 everywhere -> class 1
    features[2, 0] = 5.0                       # image 2: background, then label 2 on one pixel -> class 1
    features[2, 2, 0, 0] = 9.0
    log_probs = part_log_probs(_identity_head(4), features)
    assert log_probs.shape == (3, 4, 2, 2)
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(3, 2, 2))
    assert vote_classes(log_probs, CLASS_LABELS).tolist() == [0, 1, 1]


def test_latent_class_probe_separates_shifted_clusters_and_round_trips():
    generator = torch.Generator().manual_seed(0)
    centres = 5.0 * torch.eye(3, 6)
    classes = torch.arange(300) % 3
    ws = centres[classes] + torch.randn(300, 6, generator=generator)
    probe = fit_latent_class_probe(ws[:, None, :].expand(-1, 4, -1), classes, n_classes=3)
    held_out = torch.arange(90) % 3
    w_test = centres[held_out] + torch.randn(90, 6, generator=generator)
    assert (probe.predict(w_test) == held_out).float().mean() >= 0.95
    again = fit_latent_class_probe(ws, classes, n_classes=3)
    torch.testing.assert_close(again.weight, probe.weight)                      # deterministic
    restored = type(probe).from_state(probe.state())
    assert torch.equal(restored.predict(w_test), probe.predict(w_test))
    with pytest.raises(ValueError, match=r"classes \[2\] have no sample"):
        fit_latent_class_probe(ws[classes < 2], classes[classes < 2], n_classes=3)


def test_pixel_sampled_per_pixel_head_learns_encoded_masks(blob_masks, encoded_features):
    masks = blob_masks(13, size=32, n_classes=4, seed=0)
    features = encoded_features(masks, n_classes=4, noise=0.3, extra_channels=4, seed=1)
    segmenter = train_few_shot(features[:3], masks[:3], n_classes=4, epochs=40, batch_size=1, channels=(16,),
                               kernel_size=1, pixels_per_image=128, schedule="cosine", learning_rate=1e-2, seed=0)
    assert segmenter.config["kernel_size"] == 1 and segmenter.config["channels"] == [16]
    miou, _ = mean_iou(predict_parts(segmenter, features[3:]), masks[3:], n_classes=4)
    assert miou > 0.9
    with pytest.raises(ValueError, match="per-pixel head"):
        train_few_shot(features[:3], masks[:3], n_classes=4, epochs=1, pixels_per_image=64)


def test_flipped_training_runs_and_is_seeded(blob_masks, encoded_features):
    masks = blob_masks(2, size=8, n_classes=4, seed=0)
    features = encoded_features(masks, n_classes=4, noise=0.1, extra_channels=0, seed=1)
    first, second = (train_few_shot(features, masks, n_classes=4, epochs=2, flips=True, seed=5) for _ in range(2))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_saved_segmenter_loads_with_its_architecture_extras_and_metadata(tmp_path, blob_masks, encoded_features):
    masks = blob_masks(2, size=8, n_classes=4, seed=0)
    features = encoded_features(masks, n_classes=4, noise=0.1, extra_channels=2, seed=1)
    segmenter = train_few_shot(features, masks, n_classes=4, epochs=2, channels=(8, 4), kernel_size=1, seed=0)
    path = tmp_path / "segmenter.safetensors"
    save_part_segmenter(segmenter, path, tensors={"probe": torch.arange(3.0)}, metadata={"note": "hello"})
    saved = load_part_segmenter(path)
    assert saved.segmenter.config == segmenter.config and saved.metadata == {"note": "hello"}
    assert torch.equal(saved.tensors["probe"], torch.arange(3.0))
    torch.testing.assert_close(saved.segmenter(features), segmenter(features))
    with pytest.raises(ValueError, match="reserved"):
        save_part_segmenter(segmenter, path, metadata={"segmenter": "x"})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable part segmenter"):
        load_part_segmenter(path)
