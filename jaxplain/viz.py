"""Pictures of saliency maps (matplotlib): heat-map overlays with a colour bar, and an HTML index page."""

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


def normalise(saliency: np.ndarray) -> np.ndarray:
    """Min-max normalises one map to [0, 1] (a constant map becomes all zeros)."""
    saliency = np.asarray(saliency, np.float64)
    low, high = saliency.min(), saliency.max()
    return np.zeros_like(saliency) if high <= low else (saliency - low) / (high - low)


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


def save_overlay(path: str | Path, image: np.ndarray, saliency: np.ndarray, title: str, *, alpha: float = 0.5) -> None:
    """Writes ``image`` under its min-max-normalised ``saliency`` with a colour bar.

    ``image`` is RGB ``[H, W, 3]`` in [0, 1], or a log-mel spectrogram ``[frames, mels, 1]``, drawn with
    time along the horizontal axis and low frequencies at the bottom.
    """
    path = Path(path)
    spectrogram = image.shape[-1] == 1
    fig, (ax_image, ax_overlay) = plt.subplots(1, 2, figsize=(7.6, 3.9), dpi=100, constrained_layout=True)
    if spectrogram:
        show = dict(origin="lower", aspect="auto")
        background, heat_map = np.asarray(image)[..., 0].T, normalise(saliency).T
        for ax in (ax_image, ax_overlay):
            ax.imshow(background, cmap="gray", vmin=0, vmax=1, **show)
            ax.set(xlabel="time (frames)", ylabel="mel band")
    else:
        show, heat_map = {}, normalise(saliency)
        for ax in (ax_image, ax_overlay):
            ax.imshow(np.clip(image, 0, 1))
            ax.set_axis_off()
    ax_image.set_title("input", fontsize=10)
    heat = ax_overlay.imshow(heat_map, cmap="jet", alpha=alpha, vmin=0, vmax=1, **show)
    ax_overlay.set_title(title, fontsize=10)
    bar = fig.colorbar(heat, ax=ax_overlay, fraction=0.046, pad=0.02)
    bar.set_label("saliency (min-max normalised)", fontsize=8)
    atomic_savefig(fig, path, palette=path.suffix.lower() == ".png")
    plt.close(fig)


def html_table(rows: Sequence[dict], columns: Sequence[str], formats: dict[str, str] | None = None) -> str:
    """A plain HTML table of ``rows`` (dicts) with the given columns and optional format specs."""
    formats = formats or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format(r[c], formats.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table>"


def write_index(path: str | Path, title: str, rows: Sequence[dict], columns: Sequence[str], notes: str = "",
                extra_html: str = "") -> None:
    """An HTML page with one table row per image: its caption, then one picture per column.

    ``rows`` items are ``{"caption": str, "cells": {column: relative path or list of paths}}``: pictures
    are shown, ``.wav`` files get an audio player. ``extra_html`` (trusted, already escaped) goes between
    the notes and the pictures. Paths are URL-encoded, so any file name links correctly.
    """
    path = Path(path)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)

    def media(relative: str) -> str:
        source = html.escape(urllib.parse.quote(relative))
        if relative.endswith(".wav"):
            return f'<br><audio controls src="{source}"></audio>'
        return f'<img src="{source}" width="380">'

    body = []
    for row in rows:
        cells = "".join(
            "<td>" + "".join(media(p) for p in ([row["cells"][c]] if isinstance(row["cells"][c], str)
                                                 else row["cells"][c])) + "</td>"
            if c in row["cells"] else "<td></td>"
            for c in columns
        )
        body.append(f"<tr><th>{html.escape(row['caption'])}</th>{cells}</tr>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif} th{text-align:left;vertical-align:top;padding:4px}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(notes)}</p>{extra_html}"
        f"<table><tr><th>image</th>{head}</tr>{''.join(body)}</table></body></html>"
    )
    write_text(path, page)
