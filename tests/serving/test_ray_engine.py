"""The Ray engine (optional extra) gives the local engine's embeddings."""

import json
import time

import numpy as np
import pytest

from serving import embed as E
from serving import layerwise

ray = pytest.importorskip("ray.data", reason="Ray Data not installed (pip install 'ray[data]')")

from serving.ray_engine import run_stages_on_ray  # noqa: E402
from test_embed import _setup  # noqa: E402 (same fixture as the local engine tests)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pinsage", "multisage"])
def test_ray_engine_equals_local_engine_and_resumes(tmp_path, model):
    store, cfg, job = _setup(tmp_path, model)
    local = np.array(E.embed_all(job, progress=False).embeddings())
    on_ray = E.EmbedJob(**{**job.__dict__, "out_dir": str(tmp_path / "ray")})
    t = time.perf_counter()
    result = E.embed_all(on_ray, progress=False, engine="ray")
    print(f"ray engine: {time.perf_counter() - t:.1f} s")
    stages = layerwise.stages(2)
    assert (result.chunks_run, result.chunks_skipped) == (4 * len(stages), 0)
    np.testing.assert_allclose(np.asarray(result.embeddings()), local, rtol=0, atol=1e-6)
    progress = json.loads((tmp_path / "ray" / "progress.json").read_text())
    assert {s: sorted(c) for s, c in progress["done"].items()} == \
        {s: sorted(f"{lo}:{min(lo + 16, 60)}" for lo in range(0, 60, 16)) for s in stages}
    # The same progress record as the local engine: forget one final shard, zero
    # its rows; the local engine redoes exactly that shard, a Ray rerun nothing more.
    progress["done"]["final"].remove("16:32")
    (tmp_path / "ray" / "progress.json").write_text(json.dumps(progress))
    table = np.load(tmp_path / "ray" / "embeddings.npy", mmap_mode="r+")
    table[16:32] = 0
    table.flush()
    again = E.embed_all(on_ray, progress=False, engine="ray")
    assert (again.chunks_run, again.chunks_skipped) == (1, 4 * len(stages) - 1)
    np.testing.assert_allclose(np.asarray(again.embeddings()), local, rtol=0, atol=1e-6)
    assert E.embed_all(on_ray, progress=False).chunks_run == 0
    if model == "pinsage":
        # A shard delivered twice (as after a retry) rewrites its rows and is recorded once.
        state = json.loads((tmp_path / "ray" / "progress.json").read_text())
        before = len(state["done"]["final"])
        run_stages_on_ray(on_ray, {"final": [(16, 32), (16, 32)]}, state, lambda: None, False)
        assert len(state["done"]["final"]) == before and state["done"]["final"].count("16:32") == 1
        np.testing.assert_array_equal(np.asarray(again.embeddings()), np.load(
            tmp_path / "ray" / "embeddings.npy"))


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(E.EmbedError, match=r"pip install 'ray\[data\]'"):
        E.embed_all(E.EmbedJob("s", "r", str(tmp_path)), engine="ray")


@pytest.mark.slow
def test_failing_shard_is_a_clear_error_and_keeps_finished_shards(tmp_path):
    store, cfg, job = _setup(tmp_path)
    E.embed_all(job, progress=False)
    progress = json.loads((tmp_path / "job" / "progress.json").read_text())
    progress["done"]["final"] = []
    (tmp_path / "job" / "progress.json").write_text(json.dumps(progress))
    (tmp_path / "job" / "embeddings.npy").unlink()     # the final stage cannot open its table
    with pytest.raises(E.EmbedError, match=r"stage 'final' failed on Ray: .*embeddings\.npy"
                       r".*rerun the same command"):
        E.embed_all(job, progress=False, engine="ray")
    progress = json.loads((tmp_path / "job" / "progress.json").read_text())
    assert progress["done"]["final"] == [] and len(progress["done"]["layer2"]) == 4
