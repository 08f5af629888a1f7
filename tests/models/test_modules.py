"""eval_mode: every submodule in eval mode inside the block, each one's own mode restored after it."""

import pytest
import torch
from torch import nn

from linkviz.models import eval_mode, module_device


def _mixed() -> nn.Sequential:
    """A training model with a frozen (eval-mode) BatchNorm inside a training block."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2), nn.Dropout(0.5)), nn.Linear(2, 1))
    model.train()
    model[1][0].eval()
    return model


def _modes(model: nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def test_eval_mode_sets_eval_and_restores_each_modules_own_mode():
    model = _mixed()
    before = _modes(model)
    assert before == {"": True, "0": True, "1": True, "1.0": False, "1.1": True, "2": True}
    with eval_mode(model) as inside:
        assert inside is model
        assert not any(_modes(model).values())
        x = torch.ones(4, 2)
        torch.testing.assert_close(model(x), model(x))  # dropout off
    assert _modes(model) == before


def test_eval_mode_restores_modes_when_the_block_raises():
    model = _mixed()
    before = _modes(model)
    with pytest.raises(ZeroDivisionError), eval_mode(model):
        assert not model.training
        raise ZeroDivisionError
    assert _modes(model) == before


def test_nested_eval_mode_and_a_model_already_in_eval_mode():
    model = _mixed()
    before = _modes(model)
    with eval_mode(model):
        with eval_mode(model[1]):
            pass
        assert not any(_modes(model).values())  # the inner block restores eval, as it found it
    assert _modes(model) == before
    model.eval()
    with eval_mode(model):
        pass
    assert not any(_modes(model).values())


def test_module_device():
    assert module_device(nn.Linear(1, 1)) == torch.device("cpu")
    assert module_device(nn.ReLU()) == torch.device("cpu")
