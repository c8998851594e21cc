import pytest

from serving.vectors import VectorLayout, VectorsError, read_layout, write_layout


def test_layout_round_trips_and_names_the_unit_width(tmp_path):
    write_layout(tmp_path, VectorLayout(9, True))
    got = read_layout(tmp_path, 9)
    assert got == VectorLayout(9, True) and got.embedding_dim == 8
    assert VectorLayout(8, False).embedding_dim == 8


def test_a_directory_without_vectors_json_holds_plain_unit_vectors(tmp_path):
    assert read_layout(tmp_path, 16) == VectorLayout(16, False)


def test_a_layout_that_disagrees_with_the_array_is_refused(tmp_path):
    write_layout(tmp_path, VectorLayout(9, True))
    with pytest.raises(VectorsError, match="says 9 columns but embeddings.npy has 8"):
        read_layout(tmp_path, 8)
    (tmp_path / "vectors.json").write_text('{"format": "other", "version": 7}')
    with pytest.raises(VectorsError, match="version 7"):
        read_layout(tmp_path, 9)
