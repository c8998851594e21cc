import numpy as np
import pytest
import torch

from gpu_consumer.layers import ModelError
from gpu_consumer.model import build_model, export_model, load_model
from graphstore import build_from_arrays
from sagewalk.config import load
from tests.gpu_consumer.batches import make_batch


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    items, users, boards = rng.integers(0, 40, 300), rng.integers(0, 20, 300), rng.integers(0, 9, 300)
    return build_from_arrays(
        tmp_path / "store",
        edges={"rates": ("item", "user", items, users), "pinned": ("item", "board", items, boards)},
        node_counts={"item": 40, "user": 20, "board": 9},
        features={"item": rng.standard_normal((40, 5)).astype(np.float32),
                  "board": rng.standard_normal((9, 3)).astype(np.float32)})


def cfg(*overrides):
    return load(None, ["trainer.hidden_dim=16", "trainer.embedding_dim=8", *overrides])


def test_build_pinsage_from_store_uses_its_feature_width(store):
    c = cfg()
    m = build_model(c.trainer, store, c.sampler)
    assert m.spec.feature_dim == 5 and m.num_layers == c.sampler.num_layers
    assert m(make_batch(0, feature_dim=5)).shape[1] == 8


def test_same_seed_same_initial_weights(store):
    c = cfg()
    a, b = build_model(c.trainer, store, c.sampler), build_model(c.trainer, store, c.sampler)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), n


def test_multisage_gets_one_context_encoder_per_context_type(store):
    c = cfg("trainer.model=multisage")
    m = build_model(c.trainer, store, c.sampler)
    assert sorted(m.context_types) == ["board", "user"]
    assert m.spec.context_dims == {"user": 0, "board": 3} or m.spec.context_dims == {
        "board": 3, "user": 0}


def test_featureless_item_type_turns_on_id_embeddings(store, caplog):
    c = cfg("sampler.item_type=user")
    m = build_model(c.trainer, store, c.sampler)
    assert m.spec.feature_dim == 0 and m.spec.id_embedding_buckets == 20
    assert "no features" in caplog.text


def test_unknown_item_type_is_a_clear_error(store):
    c = cfg("sampler.item_type=pin")
    with pytest.raises(ModelError, match="it has board, item, user"):
        build_model(c.trainer, store, c.sampler)


@pytest.mark.parametrize("kind", ["pinsage", "multisage"])
def test_export_and_load_model_round_trip(store, tmp_path, kind):
    c = cfg(f"trainer.model={kind}", "trainer.id_embedding_buckets=32")
    m = build_model(c.trainer, store, c.sampler).eval()
    path = export_model(tmp_path / "run", m, {"step": 5})
    assert path.name == "model.pt"
    back = load_model(tmp_path / "run")
    assert back.spec == m.spec and not back.training
    batch = make_batch(1, feature_dim=5, context_types=2 if kind == "multisage" else 0,
                       context_dims=(0, 3) if m.context_types[0] == "user" else (3, 0)) \
        if kind == "multisage" else make_batch(1, feature_dim=5)
    with torch.no_grad():
        assert torch.allclose(back(batch), m(batch))


def test_the_export_records_the_neighbourhoods_it_was_trained_with(store, tmp_path):
    from gpu_consumer.model import trained_neighbourhoods
    from sampler.config import neighbourhood_settings
    c = cfg("sampler.walk_length=2", "sampler.restart_prob=0.5", "sampler.num_neighbors=7")
    m = build_model(c.trainer, store, c.sampler)
    export_model(tmp_path / "run", m, neighbourhoods=neighbourhood_settings(c.sampler))
    got = trained_neighbourhoods(tmp_path / "run")
    assert got == neighbourhood_settings(c.sampler)
    assert (got["walk_length"], got["restart_prob"], got["num_neighbors"]) == (2, 0.5, 7)
    export_model(tmp_path / "old", m)       # as exports made before the record
    assert trained_neighbourhoods(tmp_path / "old") == {}
    with pytest.raises(ModelError, match="train first"):
        trained_neighbourhoods(tmp_path / "none")


def test_load_model_without_export_says_what_to_do(tmp_path):
    with pytest.raises(ModelError, match="train first"):
        load_model(tmp_path)


@pytest.mark.parametrize("kind", ["pinsage", "multisage"])
def test_candidate_prior_travels_in_the_spec_and_round_trips(store, tmp_path, kind):
    c = cfg(f"trainer.model={kind}", "trainer.candidate_prior=true")
    m = build_model(c.trainer, store, c.sampler).eval()
    assert m.spec.candidate_prior and m.head.prior is not None
    with torch.no_grad():
        m.head.prior.bias.fill_(0.25)
    export_model(tmp_path / "run", m)
    back = load_model(tmp_path / "run")
    assert back.spec.candidate_prior
    h = torch.randn(4, 16)
    with torch.no_grad():
        out = back.finalize(h)
    assert out.shape == (4, 9) and torch.allclose(out[:, -1], torch.full((4,), 0.25))


def test_a_spec_written_before_the_prior_loads_without_it(store, tmp_path):
    from dataclasses import asdict
    c = cfg()
    m = build_model(c.trainer, store, c.sampler)
    export_model(tmp_path / "run", m)
    payload = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    spec = asdict(m.spec)
    del spec["candidate_prior"]
    payload["spec"] = spec
    torch.save(payload, tmp_path / "run" / "model.pt")
    back = load_model(tmp_path / "run")
    assert back.spec.candidate_prior is False and back.head.prior is None


@pytest.mark.parametrize("kind", ["pinsage", "multisage"])
def test_a_degree_prior_is_the_stores_log_degree_and_round_trips(store, tmp_path, kind):
    c = cfg(f"trainer.model={kind}", "trainer.candidate_prior=true",
            "trainer.prior_source=degree", "trainer.temperature=0.3")
    m = build_model(c.trainer, store, c.sampler).eval()
    assert m.head.prior is None and m.spec.num_items == 40
    assert m.spec.prior_scale == pytest.approx(0.3)        # uniform negatives: s = tau
    degree = np.zeros(40, np.int64)                        # over both edge types
    for name in ("rates", "pinned"):
        degree += np.diff(np.asarray(store.csr(name).indptr))
    want = torch.from_numpy((0.3 * np.log1p(degree)).astype(np.float32))
    torch.testing.assert_close(m.head.prior_table, want)
    export_model(tmp_path / "run", m)
    back = load_model(tmp_path / "run")
    ids = torch.tensor([3, 0, 39, 3])
    with torch.no_grad():
        out = back.finalize(torch.randn(4, 16), ids)
    assert out.shape == (4, 9)
    torch.testing.assert_close(out[:, -1], want[ids])
    with pytest.raises(ModelError, match="needs the ids"):
        back.finalize(torch.randn(4, 16))


def test_degree_negatives_leave_a_quarter_of_the_popularity_to_the_prior(store):
    c = cfg("trainer.candidate_prior=true", "trainer.prior_source=degree",
            "trainer.temperature=0.2", "sampler.negative_distribution=degree")
    assert build_model(c.trainer, store, c.sampler).spec.prior_scale == pytest.approx(0.05)
