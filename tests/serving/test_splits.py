import numpy as np
from hypothesis import given, settings, strategies as st

from serving.splits import Interactions, latest_items, split_by_time


def _data(rows):
    users, items, stamps = zip(*rows)
    return Interactions(np.array(users, np.int64), np.array(items, np.int64),
                        np.array(stamps, np.int64))


def test_last_is_test_second_last_is_valid():
    data = _data([(0, 10, 5), (0, 11, 1), (0, 12, 9), (0, 13, 3), (1, 20, 2), (1, 21, 1),
                  (2, 30, 7)])
    split = split_by_time(data)
    assert dict(zip(split.test.users, split.test.items)) == {0: 12, 1: 20}
    assert dict(zip(split.valid.users, split.valid.items)) == {0: 10}   # user 1 has two only
    assert sorted(zip(split.train.users, split.train.items)) == [(0, 11), (0, 13), (1, 21),
                                                                  (2, 30)]
    assert latest_items(split.train, 3).tolist() == [13, 21, 30]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(0, 10)),
                min_size=1, max_size=60))
def test_split_is_a_partition_respecting_time(rows):
    data = _data(rows)
    split = split_by_time(data)
    assert len(split.train) + len(split.valid) + len(split.test) == len(data)
    for u in set(data.users.tolist()):
        n = int((data.users == u).sum())
        assert int((split.test.users == u).sum()) == (1 if n > 1 else 0)
        assert int((split.valid.users == u).sum()) == (1 if n > 2 else 0)
        train_t = split.train.timestamps[split.train.users == u]
        for part in (split.valid, split.test):
            held = part.timestamps[part.users == u]
            assert all(h >= t for h in held for t in train_t)
    latest = latest_items(split.train, 6)
    for u in set(split.train.users.tolist()):
        mask = split.train.users == u
        assert split.train.timestamps[mask][split.train.items[mask] == latest[u]].max() == \
            split.train.timestamps[mask].max()
