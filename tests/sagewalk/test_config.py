import math

import pytest
from hypothesis import given, strategies as st

from sagewalk import config
from sagewalk.cli import main
from sagewalk.errors import ConfigError


def test_defaults_load_without_a_file():
    cfg = config.load(None)
    assert cfg.sampler.num_walks == 10
    assert cfg.trainer.margin == pytest.approx(0.1)


def test_file_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[sampler]\nnum_walks = 7\n[trainer]\nrun_dir = "x"\n')
    cfg = config.load(f, ["sampler.walk_length=3", "trainer.model=multisage"])
    assert (cfg.sampler.num_walks, cfg.sampler.walk_length) == (7, 3)
    assert cfg.trainer.model == "multisage"
    assert cfg.trainer.run_dir == "x"


@pytest.mark.parametrize("data, message", [
    ({"sampler": {"num_walks": 0}}, "sampler.num_walks: must be > 0, got 0"),
    ({"sampler": {"num_walks": "ten"}}, "sampler.num_walks: expected an integer, got 'ten'"),
    ({"sampler": {"nmu_walks": 3}}, "sampler.nmu_walks: unknown setting"),
    ({"trainer": {"model": "gcn"}}, "trainer.model: must be one of 'pinsage', 'multisage'"),
    ({"trainer": 3}, "trainer: expected a table of settings"),
    ({"bogus": {}}, "bogus: unknown setting"),
])
def test_errors_name_path_value_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config.from_dict(data)


def test_bad_toml_names_the_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[sampler\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        config.load(f)


@given(st.integers(min_value=1, max_value=10**6))
def test_toml_round_trip(num_walks):
    cfg = config.load(None, [f"sampler.num_walks={num_walks}"])
    import tomllib
    again = config.from_dict(tomllib.loads(config.to_toml(cfg)))
    assert again == cfg


def test_config_show_cli(capsys):
    assert main(["config", "show", "--set", "trainer.epochs=9"]) == 0
    assert "epochs = 9" in capsys.readouterr().out
    assert main(["config", "show", "--set", "trainer.epochs=0"]) == 2
    assert "trainer.epochs: must be > 0, got 0" in capsys.readouterr().err


def cli_error(capsys, *args):
    """`sagewalk config show ARGS` through the real CLI: its status and stderr."""
    status = main(["config", "show", *args])
    err = capsys.readouterr().err
    return status, err


@pytest.mark.parametrize("setting, message", [
    ("trainer.lr=inf", "trainer.lr: expected a finite number, got inf"),
    ("trainer.lr=nan", "trainer.lr: expected a finite number, got nan"),
    ("trainer.margin=-inf", "trainer.margin: expected a finite number, got -inf"),
    ("monitoring.trainer_port=65536", "monitoring.trainer_port: must be a port within [0, 65535]"),
    ("serving.port=70000", "serving.port: must be within [1, 65535]"),
    ("sampler.num_walks=9223372036854775808",
     "sampler.num_walks: must fit in a 64-bit integer"),
    ("sampler.num_walks=" + "9" * 5000, "sampler.num_walks: an integer of more than 4300 digits"),
    ("sampler.context_weights=" + "[" * 3000 + "]" * 3000,
     "sampler.context_weights: value nested too deeply"),
    ("worker.liveness_s=0.4", "worker.liveness_s: must be >= 2 x worker.heartbeat_s (0.5)"),
])
def test_bad_values_on_the_command_line_are_path_precise_errors(capsys, setting, message):
    status, err = cli_error(capsys, "--set", setting)
    assert status == 2 and message in err and "Traceback" not in err, err
    assert len(err) < 400  # a 5000-digit value is not echoed back


@pytest.mark.parametrize("body, message", [
    ("[sampler]\nnum_walks = " + "9" * 5000, "an integer of more than 4300 digits"),
    ("[sampler]\ncontext_weights = " + "[" * 3000 + "]" * 3000, "nested too deeply"),
    ("[trainer]\nlr = inf", "trainer.lr: expected a finite number, got inf"),
    ("[worker]\nheartbeat_s = 2.0\nliveness_s = 1.0", "worker.liveness_s: must be >= 2 x"),
])
def test_bad_values_in_a_file_are_errors_naming_file_or_path(capsys, tmp_path, body, message):
    f = tmp_path / "c.toml"
    f.write_text(body + "\n")
    status, err = cli_error(capsys, "--config", str(f))
    assert status == 2 and message in err and "Traceback" not in err, err


@given(st.integers())
def test_any_integer_is_accepted_or_refused_by_its_range(n):
    try:
        cfg = config.load(None, [f"trainer.epochs={n}"])
    except ConfigError as err:
        assert str(err).startswith("trainer.epochs: ")
        assert n <= 0 or n >= 2 ** 63
    else:
        assert 0 < n < 2 ** 63 and cfg.trainer.epochs == n


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_is_accepted_only_finite_and_in_range(x):
    try:
        cfg = config.from_dict({"trainer": {"lr": x}})
    except ConfigError as err:
        assert str(err).startswith("trainer.lr: ")
        assert not (math.isfinite(x) and x > 0)
    else:
        assert math.isfinite(x) and x > 0 and cfg.trainer.lr == x


@given(st.floats(0.01, 100), st.floats(0.01, 100))
def test_liveness_must_allow_one_late_heartbeat(heartbeat, liveness):
    data = {"worker": {"heartbeat_s": heartbeat, "liveness_s": liveness}}
    if liveness >= 2 * heartbeat:
        assert config.from_dict(data).worker.liveness_s == liveness
    else:
        with pytest.raises(ConfigError, match="worker.liveness_s: must be >= 2 x"):
            config.from_dict(data)


@pytest.mark.parametrize("setting, message", [
    # One bad value in every section, the closed choices among them: the exact
    # line the CLI printed before the sections moved into their stages and the
    # choices became Enums (taken from that tree).
    ("graphstore.feature_dtype=float64",
     "graphstore.feature_dtype: must be one of 'float16', 'float32', got 'float64'"),
    ("graphstore.memory_budget=0", "graphstore.memory_budget: must be > 0, got 0"),
    ("sampler.negative_distribution=zipf",
     "sampler.negative_distribution: must be one of 'uniform', 'degree', got 'zipf'"),
    ("sampler.hard_negative_rank=[5,1]",
     "sampler.hard_negative_rank: must be [lo, hi] with 0 <= lo < hi, got (5, 1)"),
    ("worker.credits=0", "worker.credits: must be > 0, got 0"),
    ("trainer.model=gcn", "trainer.model: must be one of 'pinsage', 'multisage', got 'gcn'"),
    ("trainer.model=3", "trainer.model: expected a string, got 3"),
    ("trainer.loss=bpr", "trainer.loss: must be one of 'max_margin', 'softmax', got 'bpr'"),
    ("trainer.pooling=max",
     "trainer.pooling: must be one of 'importance', 'uniform', got 'max'"),
    ("trainer.lr_decay=step",
     "trainer.lr_decay: must be one of 'cosine', 'linear', 'none', got 'step'"),
    ("serving.index=flat",
     "serving.index: must be one of 'auto', 'exact', 'hnsw', 'ivf', 'ivf-sq8', got 'flat'"),
    ("monitoring.dashboard_refresh_s=0", "monitoring.dashboard_refresh_s: must be > 0, got 0.0"),
    ("bogus.x=1", "bogus: unknown setting; known settings here: graphstore, monitoring, "
     "sampler, serving, trainer, worker"),
])
def test_each_sections_messages_are_unchanged_word_for_word(capsys, setting, message):
    status, err = cli_error(capsys, "--set", setting)
    assert status == 2 and err == f"sagewalk config: error: {message}\n"
