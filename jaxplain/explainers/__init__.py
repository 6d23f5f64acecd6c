"""Explanation methods. ``METHODS`` is the one registry the CLI, harness, benchmarks and tests use.

``get("rise")`` builds a method at its tuned default, ``get("relabel:paper")`` at a named preset, and keyword
overrides apply on top: ``get("rise:reference", num_masks=2000)``.
"""

from __future__ import annotations

from jaxplain.errors import UsageError
from jaxplain.explainers import dax, extremal, gfi, gradcam, gradients, lime, occlusion, reference, relabel, rise
from jaxplain.explainers import scorecam, surrogate
from jaxplain.explainers.base import Explainer, ModelHandle, State, per_example_keys
from jaxplain.explainers.registry import DEFAULT, Method, parse_spec
from jaxplain.explainers.settings import Context, Preset, Settings

METHODS: dict[str, Method] = {m.name: m for m in (
    relabel.METHOD, gfi.METHOD, dax.METHOD, surrogate.METHOD,
    gradcam.METHOD, scorecam.METHOD, rise.METHOD, lime.METHOD, occlusion.METHOD, extremal.METHOD,
    gradients.GRADIENT, gradients.INTEGRATED_GRADIENTS, gradients.SMOOTHGRAD, reference.RANDOM, reference.CENTRE,
)}
SEED_METHODS = ("relabel", "gfi", "dax", "surrogate")


def method(name: str) -> Method:
    """The registered method ``name``, or a :class:`UsageError` listing them."""
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def configure(spec: str, preset: str | None = None, **overrides) -> tuple[Method, str, Settings]:
    """``(method, preset name, settings)`` of ``spec`` (``NAME`` or ``NAME:PRESET``; ``preset`` names it instead)
    with ``overrides`` on top, checked."""
    name, named = parse_spec(spec)
    if preset is not None and ":" in spec and preset != named:
        raise UsageError(f"method {spec!r} names preset {named!r}, but preset={preset!r} was given too")
    chosen = preset or named
    found = method(name)
    return found, chosen, found.configure(chosen, **overrides)


def get(spec: str, preset: str | None = None, **overrides) -> Explainer:
    """The explainer ``spec`` (``NAME`` or ``NAME:PRESET``) with ``overrides``; unknown names, presets and
    settings raise :class:`UsageError`."""
    found, _, settings = configure(spec, preset, **overrides)
    return found.build(settings)


def resolved_settings(settings: Settings, model) -> dict:
    """Every value of ``settings`` as it acts on ``model``'s inputs (input-dependent defaults made concrete), as JSON."""
    context = Context(model.name, tuple(model.input_shape), model.num_classes)
    return settings.resolve(context).to_json()


__all__ = ["DEFAULT", "Context", "Explainer", "METHODS", "Method", "ModelHandle", "Preset", "SEED_METHODS", "Settings",
           "State", "configure", "get", "method", "parse_spec", "per_example_keys", "resolved_settings"]
