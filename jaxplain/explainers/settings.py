"""Each method's settings, written once: a frozen dataclass whose fields carry default, meaning and allowed values.

::

    @dataclasses.dataclass(frozen=True)
    class RiseSettings(Settings):
        num_masks: int = setting(4000, "random masks", count=True)
        p: float = setting(0.5, "probability that a cell is kept", above=0.0, at_most=1.0)

Constructing a settings object checks every value (its type from the annotation, its range and choices from
the field) and then the method's own :meth:`Settings.check` across fields, so a bad value is one
:class:`~jaxplain.errors.UsageError` naming the setting before any work starts. :class:`Preset` names a
settings object with where its values come from (a paper, the authors' code) and which of them that source
leaves open. :meth:`Settings.resolve` makes input-dependent defaults (``None``, ``"auto"``) concrete for a
teacher, so a run folder can record every value a map depends on.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from jaxplain.errors import UsageError

JSON = None | bool | int | float | str | list | dict


def setting(default, help: str, *, choices: tuple | None = None, count: bool = False, at_least=None,
            above=None, at_most=None, below=None):
    """A settings field: its ``default``, a one-line ``help``, and what it accepts (``choices``; ``count``: a
    positive whole number; bounds ``at_least``/``above`` and ``at_most``/``below``). ``None`` is always
    accepted where the annotation allows it."""
    metadata = {"help": help, "choices": choices, "count": count, "at_least": at_least, "above": above,
                "at_most": at_most, "below": below}
    if isinstance(default, (list, dict)):
        raise TypeError("settings defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Context:
    """What input-dependent defaults depend on: the teacher's name, input shape ``(H, W, C)`` and class count."""

    model: str
    input_shape: tuple[int, int, int]
    num_classes: int


def _kinds(annotation: str) -> list[str]:
    return [kind.strip() for kind in annotation.split("|")]


def _accepts(kind: str, value) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("tuple"):
        inner = kind[kind.index("[") + 1:kind.rindex("]")].split(",")[0].strip() if "[" in kind else "float"
        return isinstance(value, (tuple, list)) and all(_accepts(inner, v) for v in value)
    return True  # an object (a loaded VAE, ...): the method checks it


def _range_error(meta: dict, value) -> str | None:
    """What ``value`` must be when it is outside the field's range, else None."""
    if isinstance(value, (tuple, list)):
        for item in value:
            problem = _range_error(meta, item)
            if problem:
                return f"a sequence of values each {problem}"
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    if abs(value) >= 2 ** 31 and isinstance(value, int):
        return "a whole number below 2^31"
    if meta["count"] and not 1 <= value < 2 ** 31:
        return "a positive whole number below 2^31"
    bounds = [("at_least", lambda v, b: v >= b, ">="), ("above", lambda v, b: v > b, ">"),
              ("at_most", lambda v, b: v <= b, "<="), ("below", lambda v, b: v < b, "<")]
    for name, holds, symbol in bounds:
        bound = meta[name]
        if bound is not None and not holds(value, bound):
            return " and ".join(f"{s} {meta[n]:g}" for n, _, s in bounds if meta[n] is not None)
    return None


class Settings:
    """Base of every method's frozen settings dataclass (see the module docstring)."""

    method: ClassVar[str] = ""

    def __post_init__(self):
        hints = {f.name: f.type for f in dataclasses.fields(self)}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            annotation = hints[field.name] if isinstance(hints[field.name], str) else str(hints[field.name])
            kinds = _kinds(annotation)
            if not any(_accepts(kind, value) for kind in kinds):
                allowed = " or ".join(kinds)
                raise UsageError(f"{self.method}.{field.name} must be {allowed}; got {value!r}")
            if isinstance(value, list):  # a list read from JSON or TOML: the tuple the field holds
                object.__setattr__(self, field.name, tuple(value))
            if "float" in kinds and isinstance(value, int) and not isinstance(value, bool) and "int" not in kinds:
                object.__setattr__(self, field.name, float(value))
            meta = field.metadata
            if value is None or not meta:
                continue
            if meta["choices"] is not None and value not in meta["choices"]:
                raise UsageError(f"{self.method}.{field.name} must be one of {', '.join(map(repr, meta['choices']))}; "
                                 f"got {value!r}")
            problem = _range_error(meta, value)
            if problem:
                raise UsageError(f"{self.method}.{field.name} must be {problem}; got {value!r}")
        try:
            self.check()
        except ValueError as e:
            raise UsageError(f"{self.method}: {e}") from e

    def check(self) -> None:
        """Constraints across settings; raise ``ValueError`` saying which values clash and how to fix it."""

    def resolve(self, context: Context) -> "Settings":
        """These settings with their input-dependent defaults made concrete for ``context`` (default: as they are)."""
        del context
        return self

    def replace(self, **changes) -> "Settings":
        """A copy with ``changes``; an unknown name is a :class:`UsageError` listing the method's settings."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = [name for name in changes if name not in names]
        if unknown:
            raise UsageError(f"method {self.method!r} has no setting {unknown[0]!r}; it has: {', '.join(names)}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, JSON]:
        """Every setting as a JSON value (tuples as lists; an object setting as its type name)."""
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """``(name, default, help)`` of every setting, in declaration order."""
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


def _json_value(value) -> JSON:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    return f"<{type(value).__name__}>"


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named settings object: ``source`` says where its values come from (a paper's section or table, the
    authors' code), ``open`` names the settings that source leaves open with why the chosen value was chosen,
    and ``differs`` what the preset cannot be and how it differs (an artefact not at hand, ...)."""

    settings: Settings
    source: str
    open: dict[str, str] = dataclasses.field(default_factory=dict)
    differs: tuple[str, ...] = ()

    def __post_init__(self):
        names = {f.name for f in dataclasses.fields(self.settings)}
        unknown = sorted(set(self.open) - names)
        if unknown:
            raise ValueError(f"preset of {self.settings.method} marks unknown settings as open: {unknown}")

