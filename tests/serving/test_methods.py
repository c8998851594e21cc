import numpy as np

from gpu_consumer.prior import as_queries
from serving.methods import load_export
from serving.vectors import VectorLayout, write_layout


def _export(path, ids, vectors, prior):
    path.mkdir()
    np.save(path / "embeddings.npy", np.asarray(vectors, np.float32))
    (path / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
    if prior:
        write_layout(path, VectorLayout(vectors.shape[1], True))


def test_an_export_with_the_prior_scores_cosine_plus_the_candidates_beta(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    v = np.concatenate([z, [[0.1], [2.0], [-0.3], [0.0], [0.5]]], axis=1).astype(np.float32)
    _export(tmp_path / "with", ["e", "d", "c", "b", "a"], v, prior=True)
    catalogue = ("a", "b", "c", "d", "e", "f")        # reversed, and 'f' not exported
    scorer = load_export(tmp_path / "with", catalogue)
    rows = v[[4, 3, 2, 1, 0]]                         # the export's rows in catalogue order
    got = scorer(np.array([0, 2]))
    np.testing.assert_allclose(got[:, :5], as_queries(rows[[0, 2]]) @ rows.T, rtol=1e-5)
    assert np.isneginf(got[:, 5]).all()
    assert (got[:, :5].argmax(axis=1) == 3).all()     # 'd' has β = 2
    # The same array without vectors.json is read as plain vectors.
    _export(tmp_path / "without", ["e", "d", "c", "b", "a"], v, prior=False)
    plain = load_export(tmp_path / "without", catalogue)
    np.testing.assert_allclose(plain(np.array([0]))[:, :5], rows[[0]] @ rows.T, rtol=1e-5)
