"""`sagewalk train → embed --export → index → query` with
trainer.candidate_prior = true, through the real daemons and commands on a
small planted store: the exported vectors are [z ‖ β], every directory says
so, and `query` ranks by z_q·z_c + β_c.  Nothing is asserted about quality."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.small_store import write_store_and_config

ROOT = Path(__file__).resolve().parents[2]


def _sagewalk(*argv, env, timeout=180):
    done = subprocess.run([sys.executable, "-m", "sagewalk", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("source", ["learned", "degree"])
def test_train_embed_index_query_with_the_candidate_prior(tmp_path, source):
    from gpu_consumer.prior import as_queries
    cfg = write_store_and_config(tmp_path, f"candidate_prior = true\nprior_source = '{source}'\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    trained = _sagewalk("train", "--config", str(cfg), "--minutes", "0.05", env=env)
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert summary["steps"] > 0
    out = _sagewalk("embed", "--config", str(cfg), "--export", str(tmp_path / "exp"),
                    "--no-progress", env=env)
    assert "dim 17 incl. the candidate prior column" in out
    v = np.load(tmp_path / "exp" / "embeddings.npy")
    assert v.shape == (200, 17)
    np.testing.assert_allclose(np.linalg.norm(v[:, :-1], axis=1), 1.0, rtol=1e-5)
    if source == "learned":
        assert v[:, -1].std() > 0            # off its zero start
        assert summary["prior_calibration"] is None
    else:
        # The store's τ·log(1 + degree), τ 0.3 from `sagewalk train`, times the
        # factor the held-out pairs picked at the end of the run.
        from gpu_consumer.prior import degree_prior
        from graphstore import open_store
        factor = summary["prior_calibration"]["factor"]
        assert f"degree prior: {factor:g} x tau x log(1 + degree), picked on" in trained
        store = open_store(tmp_path / "store")
        by_id = dict(zip(map(str, store.ids("item").to_external(np.arange(200))),
                         degree_prior(store, "item", 0.3 * factor)))
        np.testing.assert_allclose(v[:, -1], [by_id[i] for i in
                                              (tmp_path / "exp" / "ids.txt").read_text().split()],
                                   rtol=1e-6)
    assert json.loads((tmp_path / "exp" / "vectors.json").read_text())["prior"] is True
    _sagewalk("index", "--config", str(cfg), str(tmp_path / "exp"), "--out",
              str(tmp_path / "idx"), env=env)
    assert json.loads((tmp_path / "idx" / "index.json").read_text())["prior"] is True
    ids = (tmp_path / "exp" / "ids.txt").read_text().splitlines()
    hits = json.loads(_sagewalk("query", "--config", str(cfg), ids[3], "-k", "5", "--index",
                                str(tmp_path / "idx"), "--json", env=env))
    scores = as_queries(v[3]) @ v.T
    scores[3] = -np.inf
    best = np.argsort(-scores, kind="stable")[:5]
    assert [h["id"] for h in hits] == [ids[i] for i in best]
    np.testing.assert_allclose([h["score"] for h in hits], scores[best], rtol=1e-4, atol=1e-5)
