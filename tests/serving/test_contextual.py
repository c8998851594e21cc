import numpy as np
import pytest
import torch

from gpu_consumer.model import load_model
from gpu_consumer.tensors import TensorBatch
from serving import embed as E
from serving.contextual import ContextualRanker
from serving.index import ItemIndexError, RelatedItems, UnknownItem, build_index
from worker.assemble import BatchBuilder

from tests.serving.test_embed import _setup


@pytest.fixture(scope="module")
def ranker(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ctx")
    store, cfg, job = _setup(tmp, "multisage")
    result = E.embed_all(job, progress=False)
    E.export(result.out_dir, store, "item", tmp / "exp")
    build_index(tmp / "exp", tmp / "exp")
    model = load_model(tmp / "run")
    return ContextualRanker(model, store, tmp / "job", RelatedItems(tmp / "exp"), "tag"), \
        store, cfg, model


def test_ranks_only_the_contexts_items_as_the_trainer_would(ranker):
    r, store, cfg, model = ranker
    csr = store.csr("tag", reverse=True)
    members = set(csr.indices[csr.indptr[3]:csr.indptr[4]].tolist())
    query = "5"
    hits = r.related(query, "3", k=100)
    assert {int(h.id) for h in hits} == members - {5}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # Same vectors as MultiSage.embed_in_context on the trainer's inference batch.
    builder = BatchBuilder(store, cfg.sampler, model="multisage")
    nodes = np.array([5] + [int(h.id) for h in hits])
    with torch.no_grad():
        z = model.embed_in_context(TensorBatch.from_minibatch(builder.inference_batch(nodes)),
                                   "tag", 3)
    np.testing.assert_allclose([h.score for h in hits], (z[1:] @ z[0]).numpy(), rtol=1e-4,
                               atol=1e-5)


def test_errors_name_the_problem(ranker):
    r, *_ = ranker
    with pytest.raises(UnknownItem, match="unknown tag id '99'"):
        r.related("5", "99")
    with pytest.raises(UnknownItem, match="unknown id 'zz'"):
        r.related("zz", "3")
    with pytest.raises(ItemIndexError, match="k must be >= 1"):
        r.related("5", "3", 0)
    with pytest.raises(ItemIndexError, match="context type 'board' is not one of"):
        ContextualRanker(r.model, r.store, r.h_prev.filename and
                         __import__("pathlib").Path(r.h_prev.filename).parent, r.index, "board")


def test_a_damaged_store_is_reported_as_such_not_as_an_unknown_id(ranker, tmp_path):
    import shutil

    from graphstore import StoreError, open_store
    r, store, *_ = ranker
    shutil.copytree(store.path, tmp_path / "store")
    copy = ContextualRanker(r.model, open_store(tmp_path / "store"), r.h_prev.filename and
                            __import__("pathlib").Path(r.h_prev.filename).parent, r.index,
                            "tag")
    (tmp_path / "store" / "ids" / "tag" / "keys.bin").write_bytes(b"")  # cut short, opened
    with pytest.raises(StoreError) as caught:
        copy.related("5", "3")
    assert not isinstance(caught.value, UnknownItem)


@pytest.mark.parametrize("prior", [True, "degree"])
def test_with_the_prior_context_scores_add_each_candidates_beta(tmp_path, prior):
    from gpu_consumer.prior import as_queries
    store, cfg, job = _setup(tmp_path, "multisage", prior=prior)
    result = E.embed_all(job, progress=False)
    E.export(result.out_dir, store, "item", tmp_path / "exp")
    build_index(tmp_path / "exp", tmp_path / "exp")
    model = load_model(tmp_path / "run")
    r = ContextualRanker(model, store, tmp_path / "job", RelatedItems(tmp_path / "exp"), "tag")
    hits = r.related("5", "3", k=100)
    builder = BatchBuilder(store, cfg.sampler, model="multisage")
    nodes = np.array([5] + [int(h.id) for h in hits])
    with torch.no_grad():
        v = model.embed_in_context(TensorBatch.from_minibatch(builder.inference_batch(nodes)),
                                   "tag", 3)
    assert v.shape[1] == 9 and v[1:, -1].std() > 0
    np.testing.assert_allclose([h.score for h in hits], (v[1:] @ as_queries(v[0])).numpy(),
                               rtol=1e-4, atol=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
