"""ExplainerHead layout and saving/loading a trained explainer."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from linkviz.lavise import ExplainerHead, TrainedExplainer, load_explainer


def test_layout_and_parameter_count():
    head = ExplainerHead(512, 300)
    kinds = [type(m) for m in head]
    assert kinds == [nn.BatchNorm1d, nn.Dropout, nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout, nn.Linear]
    assert head[1].p == 0.1 and head[6].out_features == 300
    # the reference's count for ResNet-18 (C = 512) with GloVe-300: 2*512 + 512*513 + 2*512 + 300*513
    assert sum(p.numel() for p in head.parameters()) == 418_604
    assert sum(p.numel() for p in ExplainerHead(2048, 300).parameters()) == 4_819_244


def test_forward_checks_channels():
    head = ExplainerHead(4, 3).eval()
    assert head(torch.ones(2, 4)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"features of shape \[N, 4\]"):
        head(torch.ones(2, 5))
    with pytest.raises(ValueError, match="positive"):
        ExplainerHead(0, 3)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    head = ExplainerHead(6, 4, dropout=0.2)
    with torch.no_grad():
        head[0].running_mean.uniform_()  # non-default buffers must survive too
    explainer = TrainedExplainer(head=head.eval(), layer="layer4", space_name="tiny", concepts=("red-c", "sky"),
                                 label_words=("red", "sky"), train_loss=(2.0, 1.5), val_loss=(2.1, 1.7),
                                 best_epoch=1, n_samples=10, seed=3, settings={"epochs": 2})
    path = explainer.save(tmp_path / "sub" / "explainer.safetensors")
    loaded = load_explainer(path)
    assert (loaded.layer, loaded.space_name, loaded.concepts, loaded.label_words) == (
        "layer4", "tiny", ("red-c", "sky"), ("red", "sky"))
    assert (loaded.train_loss, loaded.val_loss, loaded.best_epoch, loaded.seed) == ((2.0, 1.5), (2.1, 1.7), 1, 3)
    assert loaded.head.dropout == 0.2 and not loaded.head.training and loaded.settings == {"epochs": 2}
    x = torch.randn(5, 6)
    torch.testing.assert_close(loaded.head(x), head(x))


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_explainer(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(other))
    with pytest.raises(ValueError, match="not a saved LaViSE explainer"):
        load_explainer(other)
