"""Config is data: frozen, keyword-only dataclasses validated from TOML.

Every field is declared with `setting(default, help, check=...)`.  `build`
turns a plain dict (parsed TOML) into an instance, naming the dotted path,
the bad value and what is allowed on any error, e.g.
``sampler.num_walks: must be > 0, got 0``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any, Callable, Mapping

from common.errors import ConfigError

Check = Callable[[Any], "str | None"]


class Choice(str, enum.Enum):
    """A closed set of string values for a setting (a model, a loss, ...).

    Members are strings: they compare equal to their values, print as them
    and serialise as them (JSON, TOML, msgpack), so a setting typed with a
    Choice reads and writes exactly as the plain string did.  A TOML value
    outside the set is refused with the allowed values listed."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


def setting(default: Any, help: str, *, check: Check | None = None) -> Any:
    """Declare a config field with a default, help text and an optional check.

    `check(value)` returns None when the value is fine, or a message such as
    ``"must be > 0"`` that is shown with the dotted path and the value.
    """
    meta = {"help": help, "check": check}
    if isinstance(default, (list, set)):
        frozen = tuple(default)
        return dataclasses.field(default_factory=lambda: frozen, metadata=meta)
    if isinstance(default, dict):
        # A fresh dict per instance: one shared dict would let a change made
        # through one config show up in every other.
        declared = dict(default)
        return dataclasses.field(default_factory=lambda: dict(declared), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, help: str) -> Any:
    """Declare a nested config section (a dataclass) with its help text."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "check": None})


# -- checks ------------------------------------------------------------------

def positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def probability(value: Any) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be within [0, 1]"


def in_range(lo: float, hi: float) -> Check:
    def check(value: Any) -> str | None:
        return None if lo <= value <= hi else f"must be within [{lo}, {hi}]"
    return check


def port(value: Any) -> str | None:
    """A TCP port, or 0 where 0 means 'disabled' or 'pick a free one'."""
    return None if 0 <= value <= 65535 else "must be a port within [0, 65535]"


def one_of(*allowed: Any) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(map(repr, allowed))}"
    return check


# -- building ----------------------------------------------------------------

def build(cls: type, data: Mapping[str, Any] | None, path: str = "") -> Any:
    """Validate `data` against dataclass `cls`, recursing into sections."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or '<root>'}: expected a table of settings, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = _join(path, unknown[0])
        raise ConfigError(
            f"{where}: unknown setting; known settings here: {', '.join(sorted(fields))}")
    values = {}
    for name, value in data.items():
        where = _join(path, name)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = build(hint, value, where)
            continue
        value = _coerce(value, hint, where)
        check = fields[name].metadata.get("check")
        problem = check(value) if check is not None else None
        if problem:
            raise ConfigError(f"{where}: {problem}, got {value!r}")
        values[name] = value
    built = cls(**values)
    # Checks that relate fields live with their section: `relations()` yields
    # (field, problem) pairs, e.g. ("liveness_s", "must be >= 2 x heartbeat_s (0.5)").
    for name, problem in getattr(built, "relations", lambda: ())():
        raise ConfigError(f"{_join(path, name)}: {problem}, got {getattr(built, name)!r}")
    return built


def replace(config: Any, dotted: str, raw: Any) -> Any:
    """Return `config` with the setting at dotted path `dotted` set to `raw`,
    validated like a value read from a file."""
    try:
        return build(type(config), _set_in(to_dict(config), dotted, raw))
    except RecursionError as err:
        raise ConfigError(f"{dotted}: value nested too deeply to be a setting") from err


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain data (TOML/JSON friendly)."""
    return _as_plain(config)


def describe(cls: type, path: str = "") -> list[tuple[str, Any, str]]:
    """(dotted path, default, help) for every setting, for `--help` and docs."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        where = _join(path, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            rows.append((where, None, f.metadata.get("help", "")))
            rows.extend(describe(hints[f.name], where))
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if isinstance(default, Choice):
                default = default.value
            rows.append((where, default, f.metadata.get("help", "")))
    return rows


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _set_in(plain: dict[str, Any], dotted: str, raw: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    out = dict(plain)
    out[head] = _set_in(out.get(head, {}), rest, raw) if rest else raw
    return out


def _as_plain(value: Any) -> Any:
    if isinstance(value, Choice):
        return value.value
    if dataclasses.is_dataclass(value):
        return {f.name: _as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_plain(v) for k, v in value.items()}
    return value


INT64 = 2 ** 63


def _short(value: Any) -> str:
    """repr of a value, cut short: a 5000-digit integer is not an error message."""
    try:
        text = repr(value)
    except ValueError:  # int repr beyond sys.get_int_max_str_digits
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against the annotation; the only conversions are int->float
    and list->tuple, so a typo never turns silently into another value."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: unexpected {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        val_t = args[1] if args else Any
        return {str(k): _coerce(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, Choice):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        if value not in hint.values():
            raise ConfigError(f"{where}: must be one of "
                              f"{', '.join(map(repr, hint.values()))}, got {value!r}")
        return hint(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(value)}")
        if not -INT64 <= value < INT64:  # every int setting ends up in numpy/torch int64
            raise ConfigError(f"{where}: must fit in a 64-bit integer (|x| < 2**63), got "
                              f"{_short(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_short(value)}")
        try:
            value = float(value)
        except OverflowError as err:  # an int too large for a double
            raise ConfigError(f"{where}: expected a finite number, got "
                              f"{_short(value)}") from err
        if not math.isfinite(value):  # no setting means anything at inf or nan
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")
