import numpy as np
import pytest
import torch
from torch import nn

from linkviz.models import (
    ActivationCache,
    FunctionEdit,
    LayerCalledTwiceError,
    LayerNotFoundError,
    UnitEdit,
    as_unit,
    as_units,
    hooks,
    resolve_module,
    run_with_cache,
)
from linkviz.models.hooks import counted_hooks

X = torch.tensor([[1.0, 2.0], [0.0, 0.0]])  # hidden h = [[1, 2, 4], [0, 0, 1]], logits [[5, -2], [1, -1]]


def test_run_with_cache_matches_manual_forward(tiny_mlp, assert_no_hooks):
    logits, cache = run_with_cache(tiny_mlp, X, ["0", "1"])
    pre = X @ tiny_mlp[0].weight.T + tiny_mlp[0].bias
    torch.testing.assert_close(cache["0"], pre, rtol=0, atol=0)
    torch.testing.assert_close(cache["1"], torch.relu(pre), rtol=0, atol=0)
    torch.testing.assert_close(logits, torch.tensor([[5.0, -2.0], [1.0, -1.0]]))
    assert isinstance(cache, ActivationCache) and list(cache) == ["0", "1"]
    assert not cache["1"].requires_grad
    assert "'1'  [2, 3]" in repr(cache)
    assert_no_hooks(tiny_mlp)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (UnitEdit("1", (0,), "replace", 10.0), [[14.0, -2.0], [11.0, -1.0]]),  # h0 -> 10
        (UnitEdit("1", (2,), "add", 1.0), [[6.0, -3.0], [2.0, -2.0]]),  # h2 += 1
        (UnitEdit("1", (0, 1), "scale", 3.0), [[7.0, 2.0], [1.0, -1.0]]),  # h0, h1 *= 3
        (UnitEdit("1", (2,), "replace", torch.tensor([[0.0], [2.0]])), [[1.0, 2.0], [2.0, -2.0]]),  # per example
        (UnitEdit("1", None, "scale", 0.0), [[0.0, 0.0], [0.0, 0.0]]),  # every unit
        (UnitEdit("0", (0,), "replace", -5.0), [[4.0, -2.0], [1.0, -1.0]]),  # before the ReLU
    ],
)
def test_edits_change_logits_by_hand_computed_amounts(tiny_mlp, edit, expected):
    logits, cache = run_with_cache(tiny_mlp, X, "1", edits=[edit])
    torch.testing.assert_close(logits, torch.tensor(expected))
    torch.testing.assert_close(cache["1"] @ tiny_mlp[2].weight.T, logits)  # the edited output is captured


def test_edit_on_conv_output_is_per_channel(tiny_cnn):
    x = torch.zeros(1, 3, 2, 2)
    _, cache = run_with_cache(tiny_cnn, x, "layer1.0.conv", edits=[UnitEdit("layer1.0.conv", (1,), "add", 2.0)])
    torch.testing.assert_close(cache["layer1.0.conv"][0, :, 0, 0], torch.tensor([0.5, 2.0]))


def test_no_hooks_leak_after_exception_in_forward(tiny_mlp, assert_no_hooks):
    with pytest.raises(RuntimeError):
        run_with_cache(tiny_mlp, torch.zeros(1, 5), ["0", "2"], edits=[UnitEdit("1", (0,), "add", 1.0)])
    assert_no_hooks(tiny_mlp)
    with pytest.raises(ZeroDivisionError), hooks(tiny_mlp, capture=["0"]):
        raise ZeroDivisionError
    assert_no_hooks(tiny_mlp)


def test_bad_layer_name_registers_nothing_and_suggests_close_name(tiny_cnn, assert_no_hooks):
    with pytest.raises(LayerNotFoundError) as info, hooks(tiny_cnn, capture=["fc", "layer1.0.cnv"]):
        pass
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'layer1.0.cnv'" in message and "'layer1.0.conv'" in message and "named modules" in message
    assert_no_hooks(tiny_cnn)
    with pytest.raises(LayerNotFoundError):
        run_with_cache(tiny_cnn, torch.zeros(1, 3, 2, 2), ["fc"], edits=[UnitEdit("nope", (0,), "add", 1.0)])
    assert_no_hooks(tiny_cnn)


def test_resolve_module(tiny_cnn):
    assert resolve_module(tiny_cnn, "layer1.0.conv") is tiny_cnn.layer1[0].conv
    assert resolve_module(tiny_cnn, "") is tiny_cnn


def test_unit_out_of_range_names_channel_count(tiny_mlp, assert_no_hooks):
    with pytest.raises(IndexError, match=r"layer '1'.*3 channels"):
        run_with_cache(tiny_mlp, X, "1", edits=[UnitEdit("1", (3,), "add", 1.0)])
    assert_no_hooks(tiny_mlp)


def test_edit_validation():
    with pytest.raises(ValueError, match="unknown edit mode"):
        UnitEdit("1", (0,), "multiply", 1.0)
    with pytest.raises(ValueError, match="duplicates"):
        UnitEdit("1", (0, 0), "add", 1.0)
    with pytest.raises(ValueError, match="broadcast"):
        UnitEdit("1", (0, 1), "add", torch.ones(2, 3)).apply(torch.zeros(2, 3))


class _TupleOut(nn.Module):
    def forward(self, x):
        return x * 2, "aux"


def test_tuple_output_first_tensor_is_captured_and_edited():
    model = nn.Sequential(_TupleOut())
    x = torch.ones(1, 2)
    with hooks(model, capture=["0"], edits=[UnitEdit("0", (1,), "replace", 7.0)]) as store:
        out = model(x)
    assert out[1] == "aux"
    torch.testing.assert_close(out[0], torch.tensor([[2.0, 7.0]]))
    torch.testing.assert_close(store["0"], out[0])


def test_bare_int_unit_is_one_unit(tiny_mlp):
    edit = UnitEdit("1", 0, "replace", 10.0)
    assert edit.units == (0,) and edit == UnitEdit("1", (0,), "replace", 10.0)
    logits, _ = run_with_cache(tiny_mlp, X, "1", edits=[edit])
    torch.testing.assert_close(logits, torch.tensor([[14.0, -2.0], [11.0, -1.0]]))
    assert UnitEdit("1", np.int64(2), "add", 1.0).units == (2,)
    assert UnitEdit("1", np.array([0, 2]), "add", 1.0).units == (0, 2)


@pytest.mark.parametrize("units", [12.7, 1.0, (0, 1.5), [np.float32(1)], True, (0, False), "1", torch.tensor(1)])
def test_non_integer_units_are_refused_not_truncated(units):
    with pytest.raises(ValueError, match="integer"):
        UnitEdit("1", units, "add", 1.0)
    with pytest.raises(ValueError, match="integer"):
        FunctionEdit("1", torch.neg, units=units)
    with pytest.raises(ValueError, match="integer"):
        as_units(units)


def test_as_unit_and_as_units():
    assert as_unit(np.int32(4)) == 4 and type(as_unit(np.int32(4))) is int
    assert as_units(3) == (3,) and as_units([2, np.int64(0)]) == (2, 0) and as_units(()) == ()
    with pytest.raises(ValueError, match=r"got 3\.7 \(float\)"):
        as_unit(3.7)


def test_one_value_per_unit_lines_up_with_the_units_not_the_examples(tiny_mlp):
    # h = [[1, 2, 4], [0, 0, 1]]; h0 *= 3 and h1 *= 0 in every example. N == k == 2, so a per-unit value
    # broadcast along the example axis would scale example 0 by 3 and example 1 by 0 instead.
    edit = UnitEdit("1", (0, 1), "scale", torch.tensor([3.0, 0.0]))
    logits, cache = run_with_cache(tiny_mlp, X, "1", edits=[edit])
    torch.testing.assert_close(cache["1"], torch.tensor([[3.0, 0.0, 4.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(logits, torch.tensor([[7.0, -4.0], [1.0, -1.0]]))
    conv = UnitEdit("c", (1, 0), "replace", (5.0, 7.0)).apply(torch.zeros(3, 2, 2, 2))
    torch.testing.assert_close(conv[:, 0], torch.full((3, 2, 2), 7.0))
    torch.testing.assert_close(conv[:, 1], torch.full((3, 2, 2), 5.0))


def test_function_edit_on_the_whole_output_and_on_units(tiny_mlp, assert_no_hooks):
    # h = [[1, 2, 4], [0, 0, 1]], logits = [h0 + h2, h1 - h2]
    flipped, cache = run_with_cache(tiny_mlp, X, "1", edits=[FunctionEdit("1", lambda h: h.flip(1))])
    torch.testing.assert_close(cache["1"], torch.tensor([[4.0, 2.0, 1.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(flipped, torch.tensor([[5.0, 1.0], [1.0, 0.0]]))
    seen = []

    def times_ten(selected):
        seen.append(selected.shape)
        return selected * 10

    logits, _ = run_with_cache(tiny_mlp, X, "1", edits=[FunctionEdit("1", times_ten, units=2)])
    assert seen == [torch.Size([2, 1])]
    torch.testing.assert_close(logits, torch.tensor([[41.0, -38.0], [10.0, -10.0]]))
    # edits of one layer apply in order: h0 += 1, then every unit is squared
    edits = [UnitEdit("1", 0, "add", 1.0), FunctionEdit("1", torch.square)]
    with hooks(tiny_mlp, capture=["1"], edits=edits) as store:
        tiny_mlp(X)
    torch.testing.assert_close(store["1"], torch.tensor([[4.0, 4.0, 16.0], [1.0, 0.0, 1.0]]))
    assert_no_hooks(tiny_mlp)


def test_function_edit_on_conv_channels(tiny_cnn):
    x = torch.zeros(1, 3, 2, 2)  # layer1.0.conv gives 0.5 on channel 0 and 0 on channel 1 everywhere
    edit = FunctionEdit("layer1.0.conv", lambda s: s.flip(1) + 1.0, units=(0, 1))
    _, cache = run_with_cache(tiny_cnn, x, "layer1.0.conv", edits=[edit])
    torch.testing.assert_close(cache["layer1.0.conv"][0, :, 0, 0], torch.tensor([1.0, 1.5]))


def test_function_edit_validation(tiny_mlp, assert_no_hooks):
    with pytest.raises(TypeError, match="callable"):
        FunctionEdit("1", 3.0)
    with pytest.raises(ValueError, match="duplicates"):
        FunctionEdit("1", torch.neg, units=(1, 1))
    with pytest.raises(ValueError, match=r"shape it was given, \[2, 3\]; got \[2, 2\]"):
        run_with_cache(tiny_mlp, X, "1", edits=[FunctionEdit("1", lambda h: h[:, :2])])
    with pytest.raises(ValueError, match="got float"):
        FunctionEdit("1", lambda h: 1.0).apply(torch.zeros(2, 3))
    with pytest.raises(IndexError, match="3 channels"):
        run_with_cache(tiny_mlp, X, "1", edits=[FunctionEdit("1", torch.neg, units=3)])
    assert_no_hooks(tiny_mlp)
    with pytest.raises(TypeError, match="UnitEdit or FunctionEdit"):
        run_with_cache(tiny_mlp, X, "1", edits=[("1", 0, "add", 1.0)])
    assert_no_hooks(tiny_mlp)


class _ReusedReLU(nn.Module):
    """x -> relu -> fc -> relu (the same ReLU module twice, like a torchvision BasicBlock)."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(self.relu(x)))


def test_a_layer_called_twice_per_forward_is_refused_by_name(assert_no_hooks):
    model = _ReusedReLU().eval()
    with pytest.raises(LayerCalledTwiceError, match=r"layer 'relu' was called 2 times per forward pass.*called once"):
        run_with_cache(model, torch.ones(1, 2), "relu")
    with pytest.raises(ValueError, match="'relu' was called 2 times"):
        run_with_cache(model, torch.ones(1, 2), "fc", edits=[UnitEdit("relu", 0, "add", 1.0)])
    assert_no_hooks(model)
    _, cache = run_with_cache(model, torch.ones(1, 2), "fc")  # a module called once is fine
    assert cache["fc"].shape == (1, 2)
    with counted_hooks(model, capture=["relu", "fc"]) as (_, calls):
        model(torch.ones(1, 2))
    assert calls == {"relu": 2, "fc": 1}


def test_torchvision_resnet_block_relu_is_refused_and_its_block_is_not(assert_no_hooks):
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(LayerCalledTwiceError, match=r"'layer1\.0\.relu' was called 2 times.*parent 'layer1\.0'"):
        run_with_cache(model, x, "layer1.0.relu")
    _, cache = run_with_cache(model, x, "layer1.0")
    assert cache["layer1.0"].shape == (1, 64, 8, 8)
    assert_no_hooks(model)
