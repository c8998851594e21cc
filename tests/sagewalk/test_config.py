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
