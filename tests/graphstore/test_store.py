"""Opening stores: API, dtypes, id maps, features, attributes, corruption checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphstore import CSR, StoreError, UnknownIdError, build_from_arrays, open_store
from graphstore.format import FORMAT_VERSION, index_dtype


@pytest.fixture()
def store(tmp_path):
    return build_from_arrays(
        tmp_path / "store",
        edges={"rates": ("item", "user", [0, 1, 1, 2], [0, 0, 3, 1], [1.0, 2.0, 3.0, 4.0]),
               "tags": ("item", "tag", [0, 2], [1, 0])},
        features={"item": np.arange(6).reshape(3, 2)},
        attributes={"item": {"title": ["Alien (1979)", "Brazil (1985)", "Heat (1995)"]}},
        ids={"item": ["alien", "brazil", "heat"], "user": [10, 20, 30, 40]})


def test_counts_types_and_dtypes(store):
    assert store.node_types == {"item": 3, "user": 4, "tag": 2}
    rates = store.edge_types["rates"]
    assert (rates.src_type, rates.dst_type, rates.num_edges, rates.weighted) == \
        ("item", "user", 4, True)
    assert store.edge_types["tags"].weighted is False
    csr = store.csr("rates")
    assert isinstance(csr, CSR) and csr.indptr.dtype == np.int64
    assert csr.indices.dtype == np.uint16 and csr.weights.dtype == np.float32
    assert csr.indptr.tolist() == [0, 1, 3, 4]
    assert store.csr("tags").weights is None
    assert not csr.indices.flags.writeable


def test_reverse_is_transpose(store):
    rev = store.csr("rates", reverse=True)
    assert rev.num_rows == 4
    assert [rev.neighbors(u).tolist() for u in range(4)] == [[0, 1], [2], [], [1]]
    assert rev.weights.tolist() == [1.0, 2.0, 4.0, 3.0]


def test_id_maps_both_ways(store):
    items, users = store.ids("item"), store.ids("user")
    assert len(items) == 3
    assert items.to_dense(["heat", "alien"]).tolist() == [2, 0]
    assert items.to_external(np.array([1, 2])) == ["brazil", "heat"]
    assert users.to_dense([40, "10"]).tolist() == [3, 0]
    assert store.ids("tag").to_external([1]) == ["1"]
    with pytest.raises(UnknownIdError, match="'zardoz'"):
        items.to_dense(["alien", "zardoz", "nope"])
    with pytest.raises(UnknownIdError, match="50"):
        users.to_dense([10, 50])
    with pytest.raises(UnknownIdError):
        users.to_dense(["ten"])
    with pytest.raises(StoreError, match="out of range"):
        items.to_external([3])


def test_features_and_attributes(store):
    feats = store.features("item")
    # [graphstore].feature_dtype's default: build_from_arrays builds what ingest does
    assert feats.shape == (3, 2) and feats.dtype == np.float16
    assert feats[2].tolist() == [4.0, 5.0]
    assert store.features("user") is None
    assert store.attribute_names("item") == ["title"]
    assert store.attribute("item", "title", [2, 0]) == ["Heat (1995)", "Alien (1979)"]
    with pytest.raises(StoreError, match="no attribute 'year'"):
        store.attribute("item", "year", [0])
    with pytest.raises(StoreError, match="unknown node type 'movie'"):
        store.features("movie")
    with pytest.raises(StoreError, match="unknown edge type"):
        store.csr("watches")


def test_digest_is_content_not_location(tmp_path, store):
    again = build_from_arrays(tmp_path / "again", edges={
        "rates": ("item", "user", [0, 1, 1, 2], [0, 0, 3, 1], [1.0, 2.0, 3.0, 4.0]),
        "tags": ("item", "tag", [0, 2], [1, 0])},
        features={"item": np.arange(6).reshape(3, 2)},
        attributes={"item": {"title": ["Alien (1979)", "Brazil (1985)", "Heat (1995)"]}},
        ids={"item": ["alien", "brazil", "heat"], "user": [10, 20, 30, 40]})
    assert again.digest == store.digest and len(store.digest) == 64
    other = build_from_arrays(tmp_path / "other", edges={"rates": ("item", "user", [0], [1])})
    assert other.digest != store.digest


def test_truncated_file_is_refused(store):
    path = store.path / store.manifest["edge_types"]["rates"]["forward"]["indices"]["file"]
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(StoreError, match="truncated or was edited.*sagewalk ingest"):
        open_store(store.path)


def test_other_format_version_is_refused(store):
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=f"version {FORMAT_VERSION + 1}.*rebuild"):
        open_store(store.path)


def test_missing_store_and_existing_destination(tmp_path, store):
    with pytest.raises(StoreError, match="no such store"):
        open_store(tmp_path / "nowhere")
    with pytest.raises(StoreError, match="already exists.*--overwrite"):
        build_from_arrays(store.path, edges={"e": ("a", "b", [0], [0])})
    rebuilt = build_from_arrays(store.path, edges={"e": ("a", "b", [0], [0])}, overwrite=True)
    assert list(rebuilt.edge_types) == ["e"]


def test_build_error_leaves_nothing(tmp_path):
    with pytest.raises(StoreError, match="one row per item"):
        build_from_arrays(tmp_path / "s", edges={"e": ("item", "user", [0, 1], [0, 0])},
                          features={"item": np.zeros((5, 2))})
    assert list(tmp_path.iterdir()) == []


def test_index_dtype_is_narrowest_safe():
    assert index_dtype(65536) == np.uint16 and index_dtype(65537) == np.uint32
    assert index_dtype(1 << 32) == np.uint32 and index_dtype((1 << 32) + 1) == np.int64


def test_pickles_as_a_path(store):
    import pickle
    data = pickle.dumps(store)
    assert len(data) < 500
    again = pickle.loads(data)
    assert again.digest == store.digest and again.csr("rates").indices.tolist() == [0, 0, 3, 1]


def test_build_from_arrays_defaults_are_the_configs(tmp_path):
    from graphstore.config import GraphstoreConfig
    from graphstore.store_parts import BuildOptions

    config = GraphstoreConfig()
    assert BuildOptions() == BuildOptions.from_config(config)
    store = build_from_arrays(tmp_path / "s", edges={"r": ("item", "user", [0, 1], [0, 0])},
                              features={"item": np.ones((2, 3), np.float32)})
    assert store.features("item").dtype == np.dtype(config.feature_dtype)
    assert store.manifest["build"]["options"] == BuildOptions().as_dict()
