"""benchmarks/scale.py: the --memory-cap argument and the cap's cost."""

import pytest

from benchmarks import scale


def test_memory_cap_is_a_fraction_of_the_store_or_an_amount():
    assert scale.parse_cap("0.5", 1000) == 500
    assert scale.parse_cap("3G", 1) == 3 << 30 and scale.parse_cap("512MB", 1) == 512 << 20
    assert scale.parse_cap("2000000", 1) == 2_000_000
    for bad in ("lots", "-1", "0"):
        with pytest.raises(SystemExit, match="--memory-cap"):
            scale.parse_cap(bad, 1000)


def test_cost_is_capped_over_uncapped():
    run = {"phase_seconds": {"train": 10.0}, "train": {"batches_per_s": 2.0},
           "embed": {"nodes_per_s": 100.0}}
    slow = {"phase_seconds": {"train": 20.0}, "train": {"batches_per_s": 1.0},
            "embed": {"nodes_per_s": 50.0}}
    assert scale.cost(run, slow) == {"train_seconds_ratio": 2.0,
                                     "train_batches_per_s_ratio": 0.5,
                                     "embed_nodes_per_s_ratio": 0.5}


def test_the_index_is_sq8_only_under_a_cap_its_float32_lists_would_crowd():
    class Cap:
        limit = 4 << 30

    assert scale.index_kind(None, 10_000_000, None) == "ivf"
    assert scale.index_kind(None, 10_000_000, Cap()) == "ivf-sq8"   # 3.6 GB of lists > 2 GiB
    assert scale.index_kind(None, 333_333, Cap()) == "ivf"
    assert scale.index_kind("hnsw", 10_000_000, Cap()) == "hnsw"    # asked for: kept


class _Cap:
    limit = 64 << 20

    def __init__(self, kills):
        self.kills = kills

    def report(self):
        return {"cgroup": "v2", "limit_bytes": self.limit, "peak_usage_bytes": self.limit,
                "oom_kills": self.kills}


def test_a_phase_the_caps_oom_killer_ended_says_so_and_what_to_do():
    hint = scale._cap_hint(_Cap(kills=1))
    assert "OOM killer" in hint and "64 MiB" in hint and "raise --memory-cap" in hint
    assert scale._cap_hint(_Cap(kills=0)) == ""        # died of something else: no guess
    assert scale._cap_hint(None) == ""
