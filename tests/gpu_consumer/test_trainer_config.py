"""The [trainer] section: closed choices are Enums, checks across fields live with it."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.schema import build
from gpu_consumer.config import LossKind, LrDecay, Pooling, TrainerConfig
from sampler.config import ModelKind


def test_closed_choices_are_enums_that_read_as_their_toml_strings():
    cfg = build(TrainerConfig, {"model": "multisage", "loss": "softmax", "pooling": "uniform",
                                "lr_decay": "none"}, "trainer")
    assert (cfg.model, cfg.loss, cfg.pooling, cfg.lr_decay) == (
        ModelKind.MULTISAGE, LossKind.SOFTMAX, Pooling.UNIFORM, LrDecay.NONE)
    assert cfg.model == "multisage" and cfg.loss == "softmax"


def test_attention_heads_must_divide_hidden_dim_for_multisage_only():
    with pytest.raises(ConfigError, match=r"^trainer\.attention_heads: must divide "
                       r"trainer\.hidden_dim \(256\) for trainer\.model = 'multisage'; pick a "
                       r"divisor, got 3$"):
        build(TrainerConfig, {"model": "multisage", "attention_heads": 3}, "trainer")
    assert build(TrainerConfig, {"attention_heads": 3}, "trainer").attention_heads == 3
    assert build(TrainerConfig, {"model": "multisage", "hidden_dim": 12,
                                 "attention_heads": 3}, "trainer").hidden_dim == 12
