import json
from dataclasses import replace

import numpy as np
import pytest

from graphstore import build_from_arrays
from gpu_consumer.model import build_model, export_model
from sagewalk.config import load
from serving import embed as E
from serving import layerwise
from serving.embed_job import runner_for


def _setup(tmp_path, model="pinsage", n_items=60, seed=0, prior=False):
    rng = np.random.default_rng(seed)
    m = 600
    items = rng.integers(0, n_items, m)
    users = rng.integers(0, 40, m)
    edges = {"rated": ("item", "user", items, users)}
    if model == "multisage":
        edges["tag"] = ("item", "tag", rng.integers(0, n_items, 200), rng.integers(0, 8, 200))
    store = build_from_arrays(tmp_path / "store", edges=edges,
                              node_counts={"item": n_items, "user": 40, "tag": 8}
                              if model == "multisage" else {"item": n_items, "user": 40},
                              features={"item": rng.normal(size=(n_items, 6)).astype(np.float32)})
    cfg = load(None, [f"trainer.model={model}", "trainer.hidden_dim=16",
                      "trainer.embedding_dim=8", "sampler.num_neighbors=4",
                      "sampler.walk_length=3", "sampler.num_walks=8",
                      "sampler.multisage_num_neighbors=4",
                      f"trainer.candidate_prior={str(bool(prior)).lower()}",
                      f"trainer.prior_source={prior if prior == 'degree' else 'learned'}"])
    net = build_model(cfg.trainer, store, cfg.sampler)
    if prior and prior != "degree":   # a β that is not zero, as after training
        import torch
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            torch.nn.init.normal_(net.head.prior.weight, generator=g)
            net.head.prior.bias.fill_(0.2)
    export_model(tmp_path / "run", net)
    job = E.EmbedJob(str(tmp_path / "store"), str(tmp_path / "run"), str(tmp_path / "job"),
                     cfg.sampler, chunk_nodes=16,
                     processes=1)
    return store, cfg, job


@pytest.mark.parametrize("model", ["pinsage", "multisage"])
def test_layerwise_equals_per_node_recomputation(tmp_path, model):
    store, cfg, job = _setup(tmp_path, model)
    result = E.embed_all(job, progress=False)
    got = np.asarray(result.embeddings())
    assert got.shape == (60, 8)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    runner = runner_for(job)
    ref = layerwise.recompute_nodes(runner, np.arange(60)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    if model == "multisage":
        assert (np.load(tmp_path / "job" / "context_type.npy") >= 0).any()


def test_embeds_with_the_neighbourhoods_the_model_was_trained_with(tmp_path, caplog):
    from gpu_consumer.model import load_model
    from sampler.config import neighbourhood_settings
    store, cfg, job = _setup(tmp_path)
    net = load_model(job.run_dir)
    export_model(job.run_dir, net, neighbourhoods=neighbourhood_settings(cfg.sampler))
    trained = np.array(E.embed_all(job, progress=False).embeddings())
    # A config whose walks differ (the defaults `sagewalk train` overrides, say):
    # the model's own neighbourhoods are used, and the differences are said.
    other = replace(cfg.sampler, walk_length=50, num_walks=2, restart_prob=0.3,
                    num_neighbors=7, seed=5)
    with caplog.at_level("INFO", logger="serving.embed"):
        got = E.embed_all(replace(job, sampler=other, out_dir=str(tmp_path / "j2")),
                          progress=False)
    np.testing.assert_array_equal(np.asarray(got.embeddings()), trained)
    assert "sampler.walk_length = 3 (the config has 50)" in caplog.text
    # An export without the record embeds with the config's walks, and warns.
    export_model(job.run_dir, net)
    with caplog.at_level("WARNING", logger="serving.embed"):
        old = E.embed_all(replace(job, sampler=other, out_dir=str(tmp_path / "j3")),
                          progress=False)
    assert "does not record the neighbourhoods" in caplog.text
    assert not np.allclose(np.asarray(old.embeddings()), trained, atol=1e-3)
    # A damaged record is an error naming the run, not a config error out of nowhere.
    export_model(job.run_dir, net, neighbourhoods={**neighbourhood_settings(cfg.sampler),
                                                   "num_walks": 0})
    with pytest.raises(E.EmbedError, match="model.pt records are not valid"):
        E.embed_all(replace(job, out_dir=str(tmp_path / "j4")), progress=False)


def test_chunking_does_not_change_results_and_resume_skips_done(tmp_path):
    store, cfg, job = _setup(tmp_path)
    first = E.embed_all(job, progress=False)
    ref = np.array(first.embeddings())
    assert first.chunks_run == 4 * len(layerwise.stages(2)) and first.chunks_skipped == 0
    # Forget two chunks of the final stage and scribble over their rows: a rerun
    # must redo exactly those and restore them.
    progress = json.loads((tmp_path / "job" / "progress.json").read_text())
    progress["done"]["final"] = progress["done"]["final"][:2]
    (tmp_path / "job" / "progress.json").write_text(json.dumps(progress))
    table = np.load(tmp_path / "job" / "embeddings.npy", mmap_mode="r+")
    table[:] = 0
    table.flush()
    lost = {tuple(map(int, c.split(":"))) for c in
            set(f"{lo}:{min(lo + 16, 60)}" for lo in range(0, 60, 16)) - set(progress["done"]["final"])}
    again = E.embed_all(job, progress=False)
    assert again.chunks_run == 2
    for lo, hi in lost:
        np.testing.assert_array_equal(np.asarray(again.embeddings())[lo:hi], ref[lo:hi])
    other = E.embed_all(E.EmbedJob(**{**job.__dict__, "out_dir": str(tmp_path / "j2"),
                                      "chunk_nodes": 7}), progress=False)
    # Another chunking changes the BLAS blocking, so sums are taken in another
    # order: float32 promises a few ulps per reduction (eps = 1.2e-7), not
    # bit equality, and values near 1 on the unit sphere moved by 1.7e-7 once.
    # 1e-5 is ~80 ulps: far below any real difference between chunkings.
    np.testing.assert_allclose(np.asarray(other.embeddings()), ref, rtol=1e-5, atol=1e-6)


def test_changed_settings_restart_and_export_writes_ids(tmp_path):
    store, cfg, job = _setup(tmp_path)
    E.embed_all(job, progress=False)
    changed = E.EmbedJob(**{**job.__dict__, "sampler": replace(job.sampler, seed=5)})
    assert E.embed_all(changed, progress=False).chunks_skipped == 0
    out = E.export(tmp_path / "job", store, "item", tmp_path / "exp")
    vectors = np.load(out / "embeddings.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (60, 8)
    assert (out / "ids.txt").read_text().splitlines() == [str(i) for i in range(60)]


def test_unknown_item_type_is_reported(tmp_path):
    store, cfg, job = _setup(tmp_path)
    bad = E.EmbedJob(**{**job.__dict__, "sampler": replace(job.sampler, item_type="film")})
    with pytest.raises(E.EmbedError, match="sampler.item_type is 'film'"):
        E.embed_all(bad, progress=False)


@pytest.mark.slow
def test_two_processes_give_identical_embeddings(tmp_path):
    store, cfg, job = _setup(tmp_path, n_items=200)
    one = np.array(E.embed_all(job, progress=False).embeddings())
    two = E.embed_all(E.EmbedJob(**{**job.__dict__, "out_dir": str(tmp_path / "j2"),
                                    "processes": 2}), progress=False)
    np.testing.assert_array_equal(np.asarray(two.embeddings()), one)


@pytest.mark.parametrize("model", ["pinsage", "multisage"])
def test_layerwise_equals_the_trainers_inference_batches(tmp_path, model):
    """Serving embeds exactly what the trainer's own forward pass computes on
    BatchBuilder.inference_batch (the computation graph validation uses)."""
    import torch

    from gpu_consumer.model import load_model
    from gpu_consumer.tensors import TensorBatch
    from worker.assemble import BatchBuilder
    store, cfg, job = _setup(tmp_path, model)
    got = np.asarray(E.embed_all(job, progress=False).embeddings())
    builder = BatchBuilder(store, cfg.sampler, model=model)
    net = load_model(tmp_path / "run")
    nodes = np.array([0, 5, 17, 42, 59])
    with torch.no_grad():
        ref = net(TensorBatch.from_minibatch(builder.inference_batch(nodes))).numpy()
    np.testing.assert_allclose(got[nodes], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("source", ["learned", "degree"])
@pytest.mark.parametrize("model", ["pinsage", "multisage"])
def test_with_the_prior_the_tables_and_export_carry_beta_and_say_so(tmp_path, model, source):
    """[z ‖ β] layer by layer equals the trainer's forward pass; the width
    comes from the spec and vectors.json travels to the export.  A degree
    prior's β is the store's s·log(1 + degree) of each item."""
    import torch

    from gpu_consumer.model import load_model
    from gpu_consumer.tensors import TensorBatch
    from serving.vectors import VectorLayout, read_layout
    from worker.assemble import BatchBuilder
    from gpu_consumer.prior import degree_prior
    store, cfg, job = _setup(tmp_path, model, prior=True if source == "learned" else source)
    result = E.embed_all(job, progress=False)
    assert result.dim == 9 and result.prior
    got = np.asarray(result.embeddings())
    assert got.shape == (60, 9)
    np.testing.assert_allclose(np.linalg.norm(got[:, :-1], axis=1), 1.0, rtol=1e-5)
    assert got[:, -1].std() > 0
    if source == "degree":
        np.testing.assert_allclose(got[:, -1], degree_prior(store, "item", 0.1), rtol=1e-6)
    builder = BatchBuilder(store, cfg.sampler, model=model)
    nodes = np.array([0, 5, 17, 42, 59])
    with torch.no_grad():
        ref = load_model(tmp_path / "run")(
            TensorBatch.from_minibatch(builder.inference_batch(nodes))).numpy()
    np.testing.assert_allclose(got[nodes], ref, rtol=1e-4, atol=1e-5)
    out = E.export(tmp_path / "job", store, "item", tmp_path / "exp")
    assert read_layout(out, 9) == VectorLayout(9, True)
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), got)
