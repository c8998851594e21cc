import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from graphstore import build_from_arrays, open_store
from graphstore.synth import generate
from serving import baselines, holdout as H


def _synth_store(path, edges=6000, items=300, users=600, seed=3):
    g = generate(edges, items, users, 6, seed=seed)
    return build_from_arrays(path, edges={"rated": ("item", "user", g.items, g.users)},
                             node_counts={"item": items, "user": users})


def _multipartite_store(path, seed=0):
    rng = np.random.default_rng(seed)
    n_items = 80
    rated = (rng.integers(0, n_items, 900), rng.integers(0, 150, 900))
    cast = (rng.integers(0, 40, 40), rng.integers(0, n_items, 40))     # actor -> item
    return build_from_arrays(path, edges={
        "rated": ("item", "user", *rated), "cast": ("actor", "item", *cast)},
        node_counts={"item": n_items, "user": 150, "actor": 40},
        ids={"item": [f"m{i}" for i in range(n_items)]},
        features={"item": rng.random((n_items, 3)).astype(np.float32)})


def _item_contexts(store, item_type="item"):
    """{item: set of (edge type, context)} over every item-context edge type."""
    out = {i: set() for i in range(store.node_types[item_type])}
    for name in H.context_types_of(store, item_type):
        items, ctx, _ = baselines.item_context_edges(store, item_type, name)
        for i, c in zip(items.tolist(), ctx.tolist()):
            out[i].add((name, c))
    return out


def _edge_set(store):
    edges = set()
    for name in store.edge_types:
        csr = store.csr(name)
        for r in range(csr.num_rows):
            edges.update((name, r, int(c)) for c in csr.neighbors(r))
    return edges


def _drawn_links(ho):
    """(edge type, dense context) of each pair's drawn link, from pairs.tsv."""
    rows = [r.split("\t") for r in (ho.path / "pairs.tsv").read_text().splitlines()[1:]]
    out = []
    for _, _, etype, ctx in rows:
        et = ho.store.edge_types[etype]
        other = et.dst_type if et.src_type == "item" else et.src_type
        out.append((etype, int(ho.store.ids(other).to_dense([ctx])[0])))
    return out


def _check_split(src, ho):
    before, after = _item_contexts(src), _item_contexts(ho.store)
    assert len(ho.queries) == ho.meta["pairs"]
    cut = set()
    links = _drawn_links(ho)
    for q, p, link in zip(ho.queries.tolist(), ho.positives.tolist(), links):
        shared = before[q] & before[p]
        assert 1 <= len(shared) <= ho.meta["max_shared"] and link in shared
        if ho.meta["cut"] == "all":
            assert not after[q] & after[p]            # unreadable from the training store
            cut |= {(p, s) for s in shared}           # the positive's shared links
        else:
            # other pairs' cuts may take more of them; never the drawn link
            assert after[q] & after[p] <= shared - {link}
            cut.add((p, link))
    assert all(after[i] for i in after if before[i])  # no item lost its last edge
    removed = _edge_set(src) - _edge_set(ho.store)
    assert len(removed) == ho.meta["removed_edges"] and _edge_set(ho.store) <= _edge_set(src)
    gone = {(i, link) for i in before for link in before[i] - after[i]}
    assert gone == cut                                # exactly those edges, no others
    rows = (ho.path / "removed.tsv").read_text().splitlines()[1:]
    assert len(rows) == len(removed)
    pairs = {frozenset(x) for x in zip(ho.queries.tolist(), ho.positives.tolist())}
    assert len(pairs) == len(ho.queries)
    assert ho.store.node_types == src.node_types


def test_split_properties_and_files(tmp_path):
    src = _synth_store(tmp_path / "src")
    out = H.split_store(tmp_path / "src", tmp_path / "ho", pairs=60, seed=1)
    ho = H.load_holdout(out)
    assert ho.meta["pairs"] == ho.meta["requested"] == 60
    assert ho.meta["source_digest"] == src.digest and ho.meta["seed"] == 1
    _check_split(src, ho)
    rows = [r.split("\t") for r in (out / "pairs.tsv").read_text().splitlines()[1:]]
    user_ids = src.ids("user")
    for (q, p, etype, ctx) in rows:       # the removed edge is positive -> context
        assert etype == "rated"
        assert int(ctx) in src.csr("rated").neighbors(int(p))
        assert int(ctx) not in ho.store.csr("rated").neighbors(int(p))
        assert user_ids.to_dense([ctx])[0] in src.csr("rated").neighbors(int(q))


def test_split_is_deterministic_given_the_seed(tmp_path):
    _synth_store(tmp_path / "src")
    a = H.split_store(tmp_path / "src", tmp_path / "a", fraction=0.02, seed=5)
    b = H.split_store(tmp_path / "src", tmp_path / "b", fraction=0.02, seed=5)
    c = H.split_store(tmp_path / "src", tmp_path / "c", fraction=0.02, seed=6)
    assert (a / "pairs.tsv").read_text() == (b / "pairs.tsv").read_text()
    ma, mb = (json.loads((d / "holdout.json").read_text()) for d in (a, b))
    assert ma["train_digest"] == mb["train_digest"]
    assert (a / "pairs.tsv").read_text() != (c / "pairs.tsv").read_text()
    assert ma["requested"] == round(0.02 * ma["link_edges"])


def test_multipartite_links_from_chosen_types_and_ids_features_kept(tmp_path):
    src = _multipartite_store(tmp_path / "src")
    out = H.split_store(tmp_path / "src", tmp_path / "ho", pairs=20, seed=0,
                        link_types=["cast"])
    ho = H.load_holdout(out)
    assert ho.meta["context_types"] == ["cast", "rated"] and ho.meta["link_types"] == ["cast"]
    _check_split(src, ho)
    assert {r.split("\t")[2] for r in (out / "pairs.tsv").read_text().splitlines()[1:]} \
        == {"cast"}
    assert ho.item_ids == tuple(f"m{i}" for i in range(80))
    np.testing.assert_array_equal(ho.store.features("item"), src.features("item"))
    everything = H.split_store(tmp_path / "src", tmp_path / "all", pairs=40, seed=0)
    _check_split(src, H.load_holdout(everything))
    several = H.load_holdout(H.split_store(tmp_path / "src", tmp_path / "many", pairs=40,
                                           seed=0, max_shared=3))
    _check_split(src, several)
    assert several.meta["removed_edges"] > several.meta["pairs"]    # some pairs cut twice+
    one_link = H.load_holdout(H.split_store(tmp_path / "src", tmp_path / "link", pairs=40,
                                            seed=0, max_shared=3, cut="link"))
    _check_split(src, one_link)
    assert one_link.meta["removed_edges"] == one_link.meta["pairs"]


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10_000), st.integers(1, 40), st.integers(1, 4),
       st.sampled_from(["context", "edge"]), st.sampled_from(["all", "link"]))
def test_split_guarantee_on_random_graphs(tmp_path_factory, seed, pairs, max_shared, draw,
                                          cut):
    tmp = tmp_path_factory.mktemp("h")
    rng = np.random.default_rng(seed)
    m = int(rng.integers(20, 200))
    build_from_arrays(tmp / "src", edges={"e": ("item", "ctx", rng.integers(0, 30, m),
                                               rng.integers(0, 40, m))},
                      node_counts={"item": 30, "ctx": 40})
    try:
        out = H.split_store(tmp / "src", tmp / "ho", pairs=pairs, seed=seed,
                            max_shared=max_shared, draw=draw, cut=cut)
    except H.HoldoutError as err:
        assert f"no item pair shares 1..{max_shared} contexts" in str(err)
        return
    ho = H.load_holdout(out)
    assert 1 <= len(ho.queries) <= pairs
    _check_split(open_store(tmp / "src"), ho)


def test_edge_draw_and_benchmark_prepare(tmp_path, monkeypatch):
    from serving import benchgraphs
    src = _synth_store(tmp_path / "src")
    ho = H.load_holdout(H.split_store(tmp_path / "src", tmp_path / "e", pairs=30, draw="edge"))
    assert ho.meta["draw"] == "edge"
    _check_split(src, ho)
    monkeypatch.setitem(benchgraphs.SYNTH, "synth-10k", benchgraphs.Synth(4000, 200, 400))
    out = benchgraphs.prepare("synth-10k", tmp_path / "bench", pairs=25)
    assert out == tmp_path / "bench" / "synth-10k" / "holdout"
    first = H.load_holdout(out)
    assert first.meta["pairs"] == 25 and first.meta["max_shared"] == 5
    _check_split(open_store(tmp_path / "bench" / "synth-10k" / "store"), first)
    stamp = (out / "holdout.json").stat().st_mtime_ns
    assert benchgraphs.prepare("synth-10k", tmp_path / "bench", pairs=25) == out     # reused
    assert (out / "holdout.json").stat().st_mtime_ns == stamp
    with pytest.raises(H.HoldoutError, match="unknown benchmark graph"):
        benchgraphs.prepare("ml-10m", tmp_path / "bench")


def test_benchmark_graph_with_features(tmp_path, monkeypatch):
    from serving import benchgraphs
    monkeypatch.setitem(benchgraphs.SYNTH, "synth-10k-feat",
                        benchgraphs.Synth(4000, 200, 400, features=8))
    out = benchgraphs.prepare("synth-10k-feat", tmp_path / "bench", pairs=25)
    src = open_store(tmp_path / "bench" / "synth-10k-feat" / "store")
    feats = np.asarray(src.features("item"))
    assert feats.shape == (200, 8) and feats.dtype == np.float32
    assert not list((tmp_path / "bench" / "synth-10k-feat").glob(".*-edges-*"))   # scratch gone
    held = H.load_holdout(out)
    _check_split(src, held)
    assert np.array_equal(np.asarray(held.store.features("item")), feats)


def test_nested_benchmark_graph_has_its_leaves(tmp_path, monkeypatch):
    from serving import benchgraphs
    monkeypatch.setitem(benchgraphs.SYNTH, "synth-10k-nested",
                        benchgraphs.Synth(20_000, 400, 1000, communities=2,
                                          subcommunities=10, p_sub=0.9))
    benchgraphs.prepare("synth-10k-nested", tmp_path / "bench", pairs=25)
    src = open_store(tmp_path / "bench" / "synth-10k-nested" / "store")
    csr = src.csr("rated")
    rows = np.repeat(np.arange(csr.num_rows), csr.degrees())
    items = np.array(src.ids("item").to_external(rows), dtype=np.int64)
    users = np.array(src.ids("user").to_external(np.asarray(csr.indices)), dtype=np.int64)
    # 20 leaves: an edge lands in its user's leaf far above the 1 in 20 of chance
    assert np.mean(items % 20 == users % 20) > 0.5


def test_nested_benchmark_graph_with_features_carries_its_leaves(tmp_path, monkeypatch):
    from serving import benchgraphs
    monkeypatch.setitem(benchgraphs.SYNTH, "synth-10k-nested-feat",
                        benchgraphs.Synth(20_000, 400, 1000, communities=2, subcommunities=10,
                                          p_sub=0.9, features=8, feature_noise=0.0))
    benchgraphs.prepare("synth-10k-nested-feat", tmp_path / "bench", pairs=25)
    src = open_store(tmp_path / "bench" / "synth-10k-nested-feat" / "store")
    feats = np.asarray(src.features("item"))
    ext = np.array(src.ids("item").to_external(np.arange(len(feats))), dtype=np.int64)
    # without noise an item's features are its leaf's centre: equal within a leaf,
    # different across the leaves of one community
    leaf = ext % 20
    for a in range(20):
        rows = feats[leaf == a]
        assert np.allclose(rows, rows[0], atol=1e-6)
    assert not np.allclose(feats[leaf == 0][0], feats[leaf == 2][0])    # both community 0


def test_failed_split_leaves_nothing(tmp_path, monkeypatch):
    _synth_store(tmp_path / "src")

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(H.files, "write_pairs", boom)
    with pytest.raises(OSError, match="disk full"):
        H.split_store(tmp_path / "src", tmp_path / "ho", pairs=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_split_refuses_bad_arguments(tmp_path):
    _synth_store(tmp_path / "src")
    with pytest.raises(H.HoldoutError, match="exactly one of"):
        H.split_store(tmp_path / "src", tmp_path / "ho")
    with pytest.raises(H.HoldoutError, match="does not link 'item'"):
        H.split_store(tmp_path / "src", tmp_path / "ho", pairs=3, link_types=["nope"])
    with pytest.raises(H.HoldoutError, match="not a node type"):
        H.split_store(tmp_path / "src", tmp_path / "ho", pairs=3, item_type="film")
    H.split_store(tmp_path / "src", tmp_path / "ho", pairs=3)
    with pytest.raises(H.HoldoutError, match="already exists"):
        H.split_store(tmp_path / "src", tmp_path / "ho", pairs=3)
    H.split_store(tmp_path / "src", tmp_path / "ho", pairs=4, overwrite=True)
    assert H.load_holdout(tmp_path / "ho").meta["pairs"] == 4


def test_leakage_putting_the_edges_back_lifts_itemknn(tmp_path):
    _synth_store(tmp_path / "src", edges=3000)
    ho = H.load_holdout(H.split_store(tmp_path / "src", tmp_path / "ho", pairs=150))
    names = ["itemknn"]
    train = H.evaluate(ho, H.baseline_scorers(ho.store, "item", ho.context_types, names))
    leaked = H.evaluate(ho, H.baseline_scorers(open_store(tmp_path / "src"), "item",
                                               ho.context_types, names))
    t, leak = train["itemknn"], leaked["itemknn"]
    # Without the edges the positive shares nothing with the query: score 0, tied
    # with every other stranger.  With them, it is a co-occurring neighbour.
    assert t.hit_rate[50] == 0 and leak.hit_rate[50] > 0.3
    assert leak.median_rank < t.median_rank / 2 and leak.mrr > t.mrr + 0.2


def _write_export(path, ids, vectors):
    path.mkdir()
    np.save(path / "embeddings.npy", np.asarray(vectors, np.float32))
    (path / "ids.txt").write_text("\n".join(ids) + "\n")


def test_cli_holdout_then_evaluate(tmp_path, capsys):
    from sagewalk.cli import main
    _multipartite_store(tmp_path / "src")
    assert main(["holdout", "--store", str(tmp_path / "src"), "--out", str(tmp_path / "ho"),
                 "--pairs", "15", "--seed", "2"]) == 0
    ho = H.load_holdout(tmp_path / "ho")
    # A hand-written export in `sagewalk embed --export` format: the 'oracle' puts
    # every held-out positive next to its query (a perfect score), one item missing.
    vec = np.random.default_rng(0).normal(size=(80, 8))
    for q, p in zip(ho.queries, ho.positives):
        vec[p] = vec[q] + 1e-3
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    _write_export(tmp_path / "export", [f"m{i}" for i in range(80)], vec)
    capsys.readouterr()
    assert main(["evaluate", "--holdout", str(tmp_path / "ho"), "--embeddings",
                 str(tmp_path / "export"), "--out", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "model" in printed and "ppr" in printed and "HR@10" in printed
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result["methods"]) == {"model", "itemknn", "ppr", "svd", "popularity"}
    assert result["methods"]["model"]["hr@10"] > 0.5
    assert result["holdout"]["pairs"] == len(ho.queries)
    assert result["latency"]["ppr_seconds_per_query"] > 0
    assert result["latency"]["embedding_seconds_per_query"] > 0
    # The model against each baseline, paired over the same pairs: the oracle beats them.
    assert "paired over the same held-out pairs" in printed
    assert set(result["model_minus"]) == {"itemknn", "ppr", "svd", "popularity"}
    versus_ppr = result["model_minus"]["ppr"]
    assert versus_ppr["hr@10_diff"] == pytest.approx(
        result["methods"]["model"]["hr@10"] - result["methods"]["ppr"]["hr@10"], abs=1e-4)
    assert versus_ppr["hr@10_diff"] > 0 and versus_ppr["pairs"] == len(ho.queries)
    assert main(["evaluate", "--holdout", str(tmp_path / "ho"), "--leaky", "--baselines",
                 "itemknn", "--exclude-neighbours", "--out", str(tmp_path / "l.json")]) == 0
    leaky = json.loads((tmp_path / "l.json").read_text())
    assert leaky["baselines_on"].startswith("source") and leaky["exclude_neighbours"]
    assert set(leaky["methods"]) == {"itemknn"}


def test_cli_errors_are_actionable(tmp_path, capsys):
    from sagewalk.cli import main
    assert main(["evaluate", "--holdout", str(tmp_path / "none")]) == 2
    assert "sagewalk holdout --store" in capsys.readouterr().err
    _synth_store(tmp_path / "src")
    assert main(["holdout", "--store", str(tmp_path / "src"), "--out", str(tmp_path / "ho"),
                 "--pairs", "0"]) == 2
    assert "--pairs must be >= 1" in capsys.readouterr().err


def test_embedding_scorer_adds_the_exports_prior_column(tmp_path):
    from gpu_consumer.prior import as_queries
    from serving.vectors import VectorLayout, write_layout
    from sagewalk.cli import main
    _multipartite_store(tmp_path / "src")
    assert main(["holdout", "--store", str(tmp_path / "src"), "--out", str(tmp_path / "ho"),
                 "--pairs", "10", "--seed", "2"]) == 0
    ho = H.load_holdout(tmp_path / "ho")
    rng = np.random.default_rng(1)
    z = rng.normal(size=(80, 8))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    beta = np.zeros((80, 1))
    beta[5] = 4.0                                     # outranks every cosine
    v = np.concatenate([z, beta], axis=1).astype(np.float32)
    _write_export(tmp_path / "export", [f"m{i}" for i in range(80)], v)
    write_layout(tmp_path / "export", VectorLayout(9, True))
    scorer = H.embedding_scorer(ho, tmp_path / "export")
    assert scorer.prior
    queries = ho.queries[:4]
    rows = np.array([ho.item_ids.index(f"m{i}") for i in range(80)])
    got = scorer(queries)
    want = as_queries(v[rows][queries]) @ v[rows].T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert (got.argmax(axis=1) == ho.item_ids.index("m5")).all()
    lat = H.time_lookups(ho, lambda b: got[:1], scorer.vectors, queries=2, prior=True)
    assert lat["embedding_seconds_per_query"] > 0


def test_cli_help_names_every_benchmark_graph(capsys, monkeypatch):
    from sagewalk.cli import main
    from serving.benchgraphs import NAMES
    monkeypatch.setenv("COLUMNS", "1000")       # argparse wraps at hyphens otherwise
    with pytest.raises(SystemExit):
        main(["holdout", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in NAMES:
        assert name in text
