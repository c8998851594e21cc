"""The ground floor's schema helpers, on a section made for the test."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from common.errors import ConfigError
from common.schema import Choice, build, describe, one_of, positive, setting, to_dict


@dataclass(frozen=True, kw_only=True)
class Section:
    weights: dict[str, float] = setting({"a": 1.0}, "A table.")
    sizes: tuple[int, ...] = setting([1, 2], "A list.")
    n: int = setting(3, "A count.", check=positive)
    kind: str = setting("x", "A choice.", check=one_of("x", "y"))


def test_a_table_default_is_a_fresh_dict_per_instance():
    one, two = Section(), Section()
    assert one.weights == two.weights == {"a": 1.0}
    assert one.weights is not two.weights
    one.weights["b"] = 2.0          # frozen fields, mutable dict: must not leak
    assert Section().weights == {"a": 1.0} and two.weights == {"a": 1.0}
    assert build(Section, {}).weights == {"a": 1.0}


def test_errors_name_the_path_the_value_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"^s\.n: must be > 0, got 0$"):
        build(Section, {"n": 0}, "s")
    with pytest.raises(ConfigError, match=r"^s\.kind: must be one of 'x', 'y', got 'z'$"):
        build(Section, {"kind": "z"}, "s")
    with pytest.raises(ConfigError, match=r"^s\.m: unknown setting; known settings here: "
                       r"kind, n, sizes, weights$"):
        build(Section, {"m": 1}, "s")


def test_to_dict_gives_plain_data():
    assert to_dict(build(Section, {"sizes": [4]})) == {
        "weights": {"a": 1.0}, "sizes": [4], "n": 3, "kind": "x"}


class Colour(Choice):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, kw_only=True)
class Painted:
    colour: Colour = setting(Colour.RED, "A closed choice.")


def test_a_choice_reads_and_writes_as_its_string():
    built = build(Painted, {"colour": "blue"})
    assert built.colour is Colour.BLUE and built.colour == "blue"
    assert f"{built.colour}" == str(built.colour) == "blue"
    assert to_dict(built) == {"colour": "blue"} and type(to_dict(built)["colour"]) is str
    assert json.dumps(to_dict(build(Painted, {}))) == '{"colour": "red"}'
    assert describe(Painted) == [("colour", "red", "A closed choice.")]


def test_a_value_outside_the_choice_is_refused_with_the_allowed_values():
    with pytest.raises(ConfigError, match=r"^p\.colour: must be one of 'red', 'blue', "
                       r"got 'green'$"):
        build(Painted, {"colour": "green"}, "p")
    with pytest.raises(ConfigError, match=r"^p\.colour: expected a string, got 3$"):
        build(Painted, {"colour": 3}, "p")
