"""Dense id assignment in chunks against np.unique / Python sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from graphstore.idmap import IdMap
from graphstore.ids_build import IntCollector, StrCollector


def chunks(values, size):
    return [values[i:i + size] for i in range(0, len(values), size)] or [values[:0]]


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(-2**40, 2**40) | st.integers(0, 50), max_size=200),
       size=st.integers(1, 30), table_limit=st.sampled_from([8, 1 << 20]))
def test_int_ids_are_ranks(values, size, table_limit):
    collector = IntCollector("n", table_limit)
    array = np.array(values, dtype=np.int64)
    for part in chunks(array, size):
        collector.add(part)
    mapper = collector.finish()
    uniq = np.unique(array)
    assert np.array_equal(mapper.values, uniq)
    assert np.array_equal(mapper.map(array), np.searchsorted(uniq, array))
    assert mapper.map(np.array([2**41]))[0] == -1


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.text(max_size=6), max_size=120), size=st.integers(1, 25),
       unknown=st.text(min_size=7, max_size=9))
def test_string_ids_map_back_to_themselves(tmp_path_factory, values, size, unknown):
    collector = StrCollector("n")
    for part in chunks(values, size):
        collector.add(pa.array(part, pa.large_string()))
    mapper = collector.finish()
    assert len(mapper) == len(set(values))
    dense = mapper.map(pa.array(values, pa.large_string()))
    assert sorted(set(dense.tolist())) == list(range(len(mapper)))
    assert [mapper.strings[int(d)].as_py() for d in dense] == values
    assert mapper.map(pa.array([unknown], pa.large_string()))[0] == -1
    root = tmp_path_factory.mktemp("ids")
    spec = mapper.write(root)
    idmap = _idmap(root, spec)
    assert idmap.to_external(dense) == values
    assert idmap.to_dense(values).tolist() == dense.tolist()


def _idmap(root, spec) -> IdMap:
    from graphstore.idmap import open_idmap
    return open_idmap(root, "n", spec)
