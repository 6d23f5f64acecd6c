"""A method: its settings class, its named presets and the function that builds the explainer from settings.

``NAME:PRESET`` names a preset everywhere (``--method relabel:paper``, ``get("relabel:paper")``, job files);
a bare ``NAME`` is its tuned ``default``. Overrides apply on top of the preset, and the result is checked
as a whole (:class:`~jaxplain.explainers.settings.Settings`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from jaxplain.errors import UsageError
from jaxplain.explainers.base import Explainer
from jaxplain.explainers.settings import Preset, Settings

DEFAULT = "default"


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered explanation method (``presets`` holds ``"default"`` first)."""

    name: str
    build: Callable[[Settings], Explainer]
    presets: dict[str, Preset]
    summary: str

    def __post_init__(self):
        if DEFAULT not in self.presets:
            raise ValueError(f"method {self.name!r} has no default preset")
        kinds = {type(p.settings) for p in self.presets.values()}
        if len(kinds) != 1:
            raise ValueError(f"method {self.name!r}: presets of different settings classes {kinds}")

    @property
    def settings_class(self) -> type[Settings]:
        return type(self.presets[DEFAULT].settings)

    def preset(self, name: str = DEFAULT) -> Preset:
        if name not in self.presets:
            raise UsageError(f"method {self.name!r} has no preset {name!r}; it has: {', '.join(self.presets)}")
        return self.presets[name]

    def configure(self, preset: str = DEFAULT, **overrides) -> Settings:
        """The settings of ``preset`` with ``overrides`` on top, checked."""
        return self.preset(preset).settings.replace(**overrides)

    def __call__(self, preset: str = DEFAULT, **overrides) -> Explainer:
        """The explainer of ``preset`` with ``overrides``."""
        return self.build(self.configure(preset, **overrides))


def parse_spec(spec: str) -> tuple[str, str]:
    """``"relabel:paper"`` -> ``("relabel", "paper")``; ``"rise"`` -> ``("rise", "default")``."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"a method is named by a non-empty string such as 'rise' or 'relabel:paper'; got {spec!r}")
    name, _, preset = spec.strip().partition(":")
    if not name or (":" in spec and not preset):
        raise UsageError(f"method {spec!r}: write NAME or NAME:PRESET, e.g. relabel:paper")
    return name, preset or DEFAULT
