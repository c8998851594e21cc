import numpy as np

from serving.movielens import _write_items


def test_items_tsv_year_is_always_a_number(tmp_path):
    # ML-100K has a movie with year 'unkonwn' and one whose year field is 'V';
    # the ingest spec reads the column as numeric, so it must parse on every row.
    movies = [("1", "Toy Story", "1995", ["Animation"]),
              ("267", "unkonwn", "unkonwn", ["unknown"]),
              ("1412", "Land Before Time III (1995)", "V", ["Animation", "Children's"])]
    _write_items(movies, tmp_path)
    rows = [r.split("\t") for r in (tmp_path / "items.tsv").read_text().splitlines()[1:]]
    assert [r[2] for r in rows] == ["1995", "1960", "1960"]
    assert rows[0][1] == "Toy Story (1995)" and rows[1][1] == "unkonwn (unkonwn)"
    feats = np.load(tmp_path / "item_features.npy")
    np.testing.assert_allclose(feats[:, 0], [(1995 - 1960) / 40, 0, 0])
