"""Bounded memory of layer-wise embedding: what a chunk maps is unmapped after
it; the export streams; peak RSS does not follow the node count."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.procstat import peak_rss_bytes
from graphstore import build_from_arrays
from gpu_consumer.model import build_model, export_model
from sagewalk.config import load
from serving import embed as E

ROOT = Path(__file__).resolve().parents[2]


def resident_under(folder: Path) -> int:
    """Bytes of this process's mappings of files under `folder` that are resident."""
    total, inside = 0, False
    prefix = str(folder.resolve())
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
            inside = len(fields) >= 6 and fields[5].startswith(prefix)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


def build(tmp: Path, items: int, hidden: int = 16, dim: int = 8, feature_dim: int = 6):
    rng = np.random.default_rng(0)
    users = max(40, items // 2)
    m = items * 10
    store = build_from_arrays(tmp / "store",
                              edges={"rated": ("item", "user", rng.integers(0, items, m),
                                               rng.integers(0, users, m))},
                              node_counts={"item": items, "user": users},
                              features={"item": rng.normal(size=(items, feature_dim))
                                        .astype(np.float32)})
    overrides = [f"trainer.hidden_dim={hidden}", f"trainer.embedding_dim={dim}",
                 "sampler.num_neighbors=4", "sampler.walk_length=3", "sampler.num_walks=8"]
    cfg = load(None, overrides)
    export_model(tmp / "run", build_model(cfg.trainer, store, cfg.sampler))
    return store, cfg, overrides


def test_chunks_leave_nothing_of_the_tables_or_the_store_mapped(tmp_path):
    store, cfg, _ = build(tmp_path, 300)
    job = E.EmbedJob(str(tmp_path / "store"), str(tmp_path / "run"), str(tmp_path / "job"),
                     cfg.sampler, chunk_nodes=64, processes=1)
    result = E.embed_all(job, progress=False)
    assert result.chunks_run == 5 * 5
    runner = E._RUNNER                      # the in-process runner that did the work
    assert runner.store.mapped_arrays()     # it did walk the store's CSR ...
    assert resident_under(tmp_path / "job") == 0     # ... and unmapped every table page
    assert resident_under(tmp_path / "store") == 0   # and every store page it touched
    assert np.isfinite(np.asarray(result.embeddings())).all()


def test_export_streams_in_chunks_and_matches_the_table(tmp_path, monkeypatch):
    store, cfg, _ = build(tmp_path, 300)
    job = E.EmbedJob(str(tmp_path / "store"), str(tmp_path / "run"), str(tmp_path / "job"),
                     cfg.sampler, chunk_nodes=128, processes=1)
    result = E.embed_all(job, progress=False)
    monkeypatch.setattr(E, "EXPORT_ROWS", 7)   # 43 chunks, the last one short
    out = E.export(result.out_dir, store, "item", tmp_path / "exp")
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"),
                                  np.asarray(result.embeddings(), np.float32))
    assert (out / "ids.txt").read_text().splitlines() == \
        store.ids("item").to_external(np.arange(300))


def peak_rss_of_embed(tmp: Path, items: int) -> tuple[int, int]:
    """(peak RSS of `sagewalk embed` over `items` items, bytes of its tables)."""
    _, _, overrides = build(tmp, items, hidden=128, dim=128, feature_dim=64)
    argv = [sys.executable, "-m", "sagewalk", "embed", "--store", str(tmp / "store"),
            "--run", str(tmp / "run"), "--out", str(tmp / "job"), "--processes", "1",
            "--chunk", "4096", "--no-progress", "--export", str(tmp / "exp")]
    for item in overrides:
        argv += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    # VmHWM, polled: it only rises, so its last value is the peak.  Not ru_maxrss:
    # Linux carries the forked parent's resident set (this test process, grown by
    # the store it just built) into the child's ru_maxrss across exec.
    err = tmp / "embed.log"
    with err.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, vm_hwm(proc.pid))
            time.sleep(0.02)
    assert proc.returncode == 0, err.read_text()[-2000:]
    tables = sum(p.stat().st_size for p in (tmp / "job").glob("*.npy"))
    return peak, tables


def vm_hwm(pid: int) -> int:
    try:
        return peak_rss_bytes(pid)
    except OSError:
        return 0


@pytest.mark.slow
def test_peak_rss_of_sagewalk_embed_does_not_follow_the_node_count(tmp_path):
    peak_rss_of_embed(tmp_path / "warm", 2_000)   # numba compiles (and caches) here, not below
    small, small_tables = peak_rss_of_embed(tmp_path / "small", 25_000)
    large, large_tables = peak_rss_of_embed(tmp_path / "large", 200_000)
    grew = large_tables - small_tables
    assert grew > 300 << 20            # the tables did grow by hundreds of MB ...
    assert large - small < 0.25 * grew, (small, large, small_tables, large_tables)
