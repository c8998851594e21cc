"""benchmarks/hard_window.py: what the hard-negative window holds."""

import pytest

from benchmarks.hard_window import window_figures


@pytest.fixture(scope="module")
def nested(tmp_path_factory, request):
    from serving import benchgraphs
    from serving.holdout import load_holdout
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setitem(benchgraphs.SYNTH, "synth-10k-nested",
               benchgraphs.Synth(30_000, 400, 1500, communities=4, subcommunities=5, p_sub=0.8))
    root = tmp_path_factory.mktemp("bench")
    return load_holdout(benchgraphs.prepare("synth-10k-nested", root, pairs=200))


def test_window_figures_add_up(nested):
    f = window_figures(nested, queries=150, walks=100, length=10, restart=0.15,
                       leaves=(4, 20))
    assert f["items"] == nested.store.node_types["item"] and f["queries"] == 150
    lo, hi = f["window"]
    assert 0 < lo < hi < f["items"]                  # [2000, 5000] @ 50k, scaled to 400 items
    assert sum(f["positive_rank"].values()) == pytest.approx(1.0, abs=1e-9)
    assert f["window_size_median"] <= hi - lo
    # 500 uniform negatives over the catalogue land in the window in proportion to its width
    assert f["easy_in_window_per_query"] <= 500 * (hi - lo) / f["items"] + 1e-9
    # the planted structure shows through the walks' ranks, short of a lookup
    assert f["chance_community"] < f["window_same_community"] < 1.0
    assert f["chance_leaf"] == pytest.approx(1 / 20, abs=1e-3)


def test_window_figures_are_deterministic(nested):
    a = window_figures(nested, queries=50, walks=20, length=5, restart=0.3, leaves=(4, 20))
    b = window_figures(nested, queries=50, walks=20, length=5, restart=0.3, leaves=(4, 20))
    assert a == b
    flat = window_figures(nested, queries=50, walks=20, length=5, restart=0.3)
    assert "window_same_community" not in flat            # no planted truth given
    assert {k: flat[k] for k in ("window", "positive_rank")} == \
           {k: a[k] for k in ("window", "positive_rank")}
