"""sampler/config.py: the neighbourhood settings a model carries to serving."""

import pytest
from hypothesis import given, settings, strategies as st

from common.errors import ConfigError
from common.schema import build, to_dict
from sampler.config import (NEIGHBOURHOOD_SETTINGS, SamplerConfig, neighbourhood_settings,
                            with_neighbourhoods)

walk_settings = st.fixed_dictionaries({
    "num_walks": st.integers(1, 200), "walk_length": st.integers(1, 60),
    "restart_prob": st.floats(0, 1), "num_neighbors": st.integers(1, 50),
    "num_layers": st.integers(1, 3), "seed": st.integers(0, 2**31),
    "multisage_walk_length": st.integers(0, 5), "multisage_num_neighbors": st.integers(1, 30),
    "context_weights": st.dictionaries(st.sampled_from(["rated", "tagged"]),
                                       st.floats(0.1, 5), max_size=2)})


@settings(max_examples=50, deadline=None)
@given(trained=walk_settings, batch_size=st.integers(1, 4096))
def test_the_trained_neighbourhoods_replace_the_configs_and_nothing_else(trained, batch_size):
    training = build(SamplerConfig, trained)
    serving = build(SamplerConfig, {"batch_size": batch_size, "paged_walks": "on"})
    got, changed = with_neighbourhoods(serving, neighbourhood_settings(training))
    assert neighbourhood_settings(got) == neighbourhood_settings(training)
    assert (got.batch_size, got.paged_walks) == (batch_size, "on")
    differing = [k for k in NEIGHBOURHOOD_SETTINGS
                 if to_dict(training)[k] != to_dict(serving)[k]]
    assert [line.split(" = ")[0] for line in changed] == [f"sampler.{k}" for k in differing]


def test_a_difference_is_said_with_both_values_and_missing_settings_keep_the_config():
    got, changed = with_neighbourhoods(SamplerConfig(), {"walk_length": 2})
    assert changed == ["sampler.walk_length = 2 (the config has 50)"]
    assert got.walk_length == 2 and got.num_walks == SamplerConfig().num_walks
    assert with_neighbourhoods(SamplerConfig(), {}) == (SamplerConfig(), [])
    assert "item_type" not in NEIGHBOURHOOD_SETTINGS   # the model's spec carries it


def test_a_damaged_record_is_refused_with_the_setting_named():
    with pytest.raises(ConfigError, match="sampler.num_walks"):
        with_neighbourhoods(SamplerConfig(), {"num_walks": 0})
