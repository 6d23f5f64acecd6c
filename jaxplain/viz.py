"""Pictures of saliency maps: heat-map overlays of the inputs, and the HTML page that shows them with one colour bar."""

from __future__ import annotations

import html
import io
import urllib.parse
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from jaxplain.files import atomic_path, write_text  # noqa: E402
from jaxplain.imageops import minmax  # noqa: E402

COLOUR_MAP = "jet"
OVERLAY_ALPHA = 0.5


def normalise(saliency: np.ndarray) -> np.ndarray:
    """Min-max normalises one map to [0, 1] (a constant map becomes all zeros)."""
    return minmax(np.asarray(saliency, np.float64), axes=None)


def atomic_savefig(fig, path: Path, *, palette: bool = False, **kwargs) -> None:
    """Saves a figure via a temporary file, so an interrupted job never leaves a half-written PNG.

    ``palette=True`` stores a PNG with a 256-colour palette: about a third of the bytes for overlays,
    which matters when an evaluation writes hundreds of them."""
    with atomic_path(path) as tmp:
        if palette:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", **kwargs)
            Image.open(buffer).convert("RGB").quantize(256).save(tmp, format="png", optimize=True)
        else:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)


def _picture(image: np.ndarray) -> np.ndarray:
    """The picture of an input in [0, 1]: RGB as it is; a log-mel spectrogram ``[frames, mels, 1]`` as grey,
    time along the horizontal axis and low frequencies at the bottom."""
    image = np.clip(np.asarray(image, np.float32), 0, 1)
    if image.shape[-1] == 1:
        return np.repeat(image[..., 0].T[::-1, :, None], 3, axis=-1)
    return image


def _heat(saliency: np.ndarray, spectrogram: bool) -> np.ndarray:
    heat = normalise(saliency)
    return heat.T[::-1] if spectrogram else heat


def _save_rgb(path: Path, rgb: np.ndarray, scale: int) -> None:
    picture = Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="png", optimize=True)


def _scale(shape) -> int:
    """Small inputs (32-px CIFAR images, 64-frame spectrograms) are enlarged by whole pixels for the page."""
    return max(1, 160 // max(shape[:2]))


def save_input(path: str | Path, image: np.ndarray) -> None:
    """Writes the picture of an input: RGB ``[H, W, 3]`` in [0, 1], or a spectrogram ``[frames, mels, 1]``."""
    _save_rgb(Path(path), _picture(image), _scale(image.shape))


def save_overlay(path: str | Path, image: np.ndarray, saliency: np.ndarray, *, alpha: float = OVERLAY_ALPHA) -> None:
    """Writes ``image`` under its min-max-normalised ``saliency`` in the colour map :data:`COLOUR_MAP`, at the
    input's resolution (no title or colour bar: a page shows one colour bar for all, :func:`write_index`)."""
    heat = plt.get_cmap(COLOUR_MAP)(_heat(saliency, image.shape[-1] == 1))[..., :3]
    _save_rgb(Path(path), (1 - alpha) * _picture(image) + alpha * heat, _scale(image.shape))


def colour_bar_html(stops: int = 11) -> str:
    """The page's one colour bar: the colour map as a CSS gradient from 0 (least salient) to 1 (most)."""
    colours = plt.get_cmap(COLOUR_MAP)(np.linspace(0, 1, stops))[:, :3]
    gradient = ", ".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})" for r, g, b in colours)
    return ("<div class='bar'><span>0</span><div class='ramp' style='background:linear-gradient(to right, "
            f"{gradient})'></div><span>1</span><span class='what'>saliency, min-max normalised per map, "
            f"over the input at {OVERLAY_ALPHA:.0%} opacity</span></div>")


def html_table(rows: Sequence[dict], columns: Sequence[str], formats: dict[str, str] | None = None) -> str:
    """A plain HTML table of ``rows`` (dicts) with the given columns and optional format specs."""
    formats = formats or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format(r[c], formats.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<div class='scores'><table border='1'><tr>{head}</tr>{body}</table></div>"


PAGE_STYLE = (
    "body{font-family:sans-serif;margin:12px;max-width:1376px}"
    "table{table-layout:fixed;width:100%;border-collapse:collapse}"
    "th,td{vertical-align:top;padding:3px;text-align:left;font-size:13px;overflow-wrap:anywhere}"
    "td img{width:100%;height:auto;display:block;image-rendering:pixelated}"
    "audio{width:100%}"
    ".note{font-size:11px;color:#444;white-space:pre-line}"
    ".bar{display:flex;align-items:center;gap:6px;margin:8px 0;font-size:12px}"
    ".ramp{width:240px;height:14px}"
    ".what{color:#444;margin-left:8px}"
    ".scores{overflow-x:auto}"
)


def write_index(path: str | Path, title: str, rows: Sequence[dict], columns: Sequence[str], notes: str = "",
                extra_html: str = "") -> None:
    """An HTML page with one row per input: its caption and picture once, then one overlay per column, under
    one shared colour bar; the table takes the page's width, so any number of columns fits the screen.

    ``rows`` items are ``{"caption": str, "input": path, "cells": {column: path or list of paths},
    "notes": {column: str}}`` (``input`` and ``notes`` optional; ``input`` may be a list, e.g. a spectrogram and
    its clip). Pictures are shown, ``.wav`` files get an audio player. ``extra_html`` (trusted, already escaped)
    goes below the pictures. Paths are URL-encoded, so any file name links correctly.
    """
    path = Path(path)

    def media(relative: str) -> str:
        source = html.escape(urllib.parse.quote(relative))
        if relative.endswith(".wav"):
            return f'<audio controls src="{source}"></audio>'
        return f'<img src="{source}" alt="">'

    def cell(items, note: str = "") -> str:
        items = [items] if isinstance(items, str) else list(items or [])
        text = f"<div class='note'>{html.escape(note)}</div>" if note else ""
        return "<td>" + "".join(media(p) for p in items) + text + "</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["input", *columns])
    body = []
    for row in rows:
        cells = "".join(cell(row["cells"].get(c), row.get("notes", {}).get(c, "")) for c in columns)
        body.append(f"<tr>{cell(row.get('input'), row['caption'])}{cells}</tr>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(notes)}</p>{colour_bar_html() if rows else ''}"
        f"<table><tr>{head}</tr>{''.join(body)}</table>{extra_html}</body></html>"
    )
    write_text(path, page)
