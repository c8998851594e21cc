"""Node features and display attributes at ingest.

A node type's feature matrix is the concatenation, in this order, of its
numeric columns (standardised unless asked not to), multi-hot columns (one
slot per category of the column's vocabulary), text columns (sentence
embeddings) and precomputed .npy arrays.  The manifest records which slice
each column occupies.  Nodes absent from the node files get zeros.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphstore.errors import IngestError
from graphstore.feature_columns import plan_columns
from graphstore.feature_inputs import FeatureInputs, ids_source, load_array, node_source
from graphstore.format import make_entry
from graphstore.readers import ColumnRequest, TableSource, read_chunks


def write_node_data(root: Path, inputs: FeatureInputs, mappers, counts, options):
    """Features and attributes of every node type named in node/array files."""
    features, attributes, report = {}, {}, {}
    for t in inputs.types():
        nodes = [n for n in inputs.nodes if n.type == t]
        arrays = [a for a in inputs.arrays if a.type == t]
        plan = plan_columns(nodes, arrays, options)
        covered = np.zeros(counts[t], dtype=bool)
        if plan.width:
            features[t] = _write_matrix(root, t, plan, nodes, arrays, mappers[t], counts[t],
                                        covered, options)
        attrs = _write_attributes(root, t, nodes, mappers[t], counts[t], covered, options)
        if attrs:
            attributes[t] = attrs
        report[t] = {"nodes": counts[t], "with_node_data": int(covered.sum()),
                     "feature_dim": plan.width}
    return features, attributes, report


def _write_matrix(root, t, plan, nodes, arrays, mapper, count, covered, options):
    rel = f"features/{t}.bin"
    (root / "features").mkdir(exist_ok=True)
    out = np.memmap(root / rel, dtype=options.feature_dtype, mode="w+",
                    shape=(count, plan.width)) if count else None
    for n in nodes:
        source = node_source(n)
        requests = [ColumnRequest(n.id, mapper.kind)] + plan.requests(n)
        for chunk in read_chunks(source, requests, options.chunk_rows):
            dense = mapper.map(chunk.columns[n.id])
            covered[dense] = True
            for col, block in plan.blocks(n, chunk):
                _store_block(out, dense, col, block, source, t)
    for a in arrays:
        _write_array_rows(out, plan, a, mapper, covered, options, t)
    if out is not None:
        out.flush()
        del out
    return {"array": make_entry(root, rel, options.feature_dtype, (count, plan.width)),
            "columns": plan.describe()}


def _store_block(out, dense, col, block, source, t):
    block = block.astype(out.dtype)
    if not np.all(np.isfinite(block)):
        raise IngestError(f"{source.path}: column {col.name!r} of {t} has values that are "
                          f"not finite in {out.dtype} (NaN, inf or too large); rescale or "
                          "clean the column")
    out[dense, col.start:col.stop] = block


def _write_array_rows(out, plan, a, mapper, covered, options, t):
    import pyarrow as pa
    array = load_array(a)
    col = plan.array_column(a)
    if a.ids is None:
        rows = np.arange(array.shape[0], dtype=np.int64)
        keys = rows if mapper.kind == "int" else pa.array(rows.astype(str), pa.large_string())
        dense_all = mapper.map(keys)
    else:
        dense_all = np.concatenate([mapper.map(c.columns[0]) for c in read_chunks(
            ids_source(a.ids), [ColumnRequest(0, mapper.kind)], options.chunk_rows)])
    if dense_all.size != array.shape[0]:
        raise IngestError(f"{a.file}: {array.shape[0]} rows but {a.ids} lists "
                          f"{dense_all.size} ids; give one id per row")
    covered[dense_all] = True
    for start in range(0, array.shape[0], options.chunk_rows):
        dense = dense_all[start:start + options.chunk_rows]
        block = np.asarray(array[start:start + dense.size]).reshape(dense.size, -1)
        _store_block(out, dense, col, block, TableSource(a.file, "npy"), t)


def _write_attributes(root, t, nodes, mapper, count, covered, options) -> dict:
    from graphstore.store_parts import write_attribute
    specs = {}
    for n in nodes:
        for name in n.attributes:
            values = [""] * count
            for chunk in read_chunks(node_source(n), [ColumnRequest(n.id, mapper.kind),
                                                      ColumnRequest(name, "str")],
                                     options.chunk_rows):
                dense = mapper.map(chunk.columns[n.id])
                covered[dense] = True
                for d, text in zip(dense.tolist(), chunk.columns[name].to_pylist()):
                    values[d] = text
            specs[name] = write_attribute(root, t, name, values, count)
    return specs
