"""Explain image (or audio) files with one or more methods and write overlays, a results file and an index page.

Everything is read and computed before anything is written, and every file is written through a
temporary name, so a bad input or an interrupted run leaves no partial output behind. The output folder
is held (:class:`~jaxplain.runs.folder.RunFolder`): only files this tool wrote there are replaced or removed,
and a file of the user's where an output must go stops the run before any work. For an audio
model the overlay is drawn over the clip's spectrogram, and ``audio/`` holds the clip as the model
heard it plus, per method, the clip keeping only the ``AUDIO_KEEP`` most salient time-frequency bins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from jaxplain import runner
from jaxplain.errors import UsageError
from jaxplain.files import atomic_path
from jaxplain.model import Model
from jaxplain.runs.folder import RunFolder
from jaxplain.interrupts import interruptible
from jaxplain.runs.loop import file_label
from jaxplain.validation import check_labels
from jaxplain.viz import save_input, save_overlay, write_index

TOP_K = 5
AUDIO_KEEP = 0.25  # share of time-frequency bins kept in a method's masked clip


def _is_audio(model: Model) -> bool:
    from jaxplain.audio import AudioFrontend

    return isinstance(model.preprocessing, AudioFrontend)


def _write_clips(folder: RunFolder, stem: str, model: Model, path, saliency_by_method: dict) -> list[str]:
    """The clip as the model hears it, and per method the clip masked to its most salient bins."""
    from jaxplain.audio import masked_clip, read_wav, write_wav

    frontend = model.preprocessing
    wave = frontend.fit(read_wav(path, frontend.sample_rate))
    written = [f"audio/{stem}.wav"]
    with atomic_path(folder.path(written[0])) as tmp:
        write_wav(tmp, wave, frontend.sample_rate)
    for method, saliency in saliency_by_method.items():
        keep = (saliency >= np.quantile(saliency, 1.0 - AUDIO_KEEP)).astype(np.float32)
        relative = f"audio/{stem}_{file_label(method)}.wav"
        with atomic_path(folder.path(relative)) as tmp:
            write_wav(tmp, masked_clip(frontend, wave, keep), frontend.sample_rate)
        written.append(relative)
    return written


def explain_files(
    model: Model,
    methods: Sequence[str],
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    labels: Sequence[int] | None = None,
    seed: int = 0,
    hyperparameters: dict[str, dict] | None = None,
    batch_size: int = 8,
    title: str = "jaxplain explanations",
    extra_html: str = "",
) -> list[dict]:
    """Writes ``out/overlays/*.png``, ``out/results.npz``, ``out/results.json`` and ``out/index.html``.

    ``methods`` are ``NAME`` or ``NAME:PRESET``; ``labels`` gives the class to explain per image (one value for
    all, or one per image); by default each image's predicted class. Returns the per-image records written to
    ``results.json``.
    """
    if not paths:
        raise UsageError("no images given; pass one or more image files")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"--batch-size must be a whole number of at least 1; got {batch_size!r}")
    hyperparameters = hyperparameters or {}
    stems = [f"{i:03d}_{Path(p).stem}" for i, p in enumerate(paths)]
    audio = _is_audio(model)
    outputs = ["results.npz", "results.json", "index.html"]
    outputs += [f"overlays/{stem}_{file_label(m)}.png" for stem in stems for m in methods]
    if audio:
        outputs += [f"audio/{stem}.wav" for stem in stems] + [
            f"audio/{stem}_{file_label(m)}.wav" for stem in stems for m in methods]
    with RunFolder(out, kind="explain") as folder:
        folder.claim_files(outputs)
        explainers = {m: runner.make_explainer(m, model, **hyperparameters.get(m, {})) for m in methods}
        images = np.stack([model.preprocessing.load(p) for p in paths])
        probabilities = runner.predict(model, images)
        if labels is None:
            targets = probabilities.argmax(-1)
        else:
            labels = list(labels)
            if len(labels) not in (1, len(paths)):
                raise UsageError(f"give one --label for all images or one per image; got {len(labels)} for "
                                 f"{len(paths)} images")
            targets = check_labels(np.resize(np.asarray(labels), len(paths)), model.num_classes, len(paths))
        maps, details = {}, {}
        with interruptible(lambda: "nothing was written (the outputs are written once every map is made)"):
            for method in tqdm(methods, desc="methods", unit="method", disable=len(methods) < 2):
                maps[method], details[method] = runner.explain(model, explainers[method], images, targets, key=seed,
                                                               batch_size=batch_size, with_details=True)
                degenerate = int(np.sum(details[method].get("degenerate", 0.0)))
                if degenerate:
                    tqdm.write(f"warning: {method}: {degenerate} image(s) had a degenerate neighbourhood (nearly "
                               "every sample relabelled alike); their maps say little. See 'details' in results.json")
        return _write_outputs(folder, model, methods, paths, stems, images, probabilities, targets, maps, details,
                              seed, title, extra_html)


def _write_outputs(folder: RunFolder, model: Model, methods, paths, stems, images, probabilities, targets, maps,
                   details, seed, title, extra_html) -> list[dict]:
    """Overlays (and clips), results.npz/.json and index.html; the tool's own files of an earlier run that this
    one did not write again are removed afterwards."""
    records, rows, written = [], [], []
    for i, path in enumerate(paths):
        target = int(targets[i])
        top = np.argsort(-probabilities[i])[:TOP_K]
        record = {
            "file": str(path),
            "class_index": target,
            "class_name": model.class_names[target],
            "probability": float(probabilities[i, target]),
            "top5": [{"class_index": int(c), "class_name": model.class_names[c],
                      "probability": float(probabilities[i, c])} for c in top],
            "overlays": {},
        }
        record["details"] = {m: {k: float(v[i]) for k, v in details[m].items()} for m in methods if details[m]}
        shown = f"overlays/inputs/{stems[i]}.png"
        save_input(folder.path(shown), images[i])
        written.append(shown)
        for method in methods:
            rel = f"overlays/{stems[i]}_{file_label(method)}.png"
            save_overlay(folder.path(rel), images[i], maps[method][i])
            record["overlays"][method] = rel
            written.append(rel)
        cells, shown = dict(record["overlays"]), [shown]
        if _is_audio(model):
            clip, *masked = _write_clips(folder, stems[i], model, path, {m: maps[m][i] for m in methods})
            written += [clip, *masked]
            record["clip"], record["masked_clips"] = clip, dict(zip(methods, masked))
            shown.append(clip)
            cells = {m: [cells[m], record["masked_clips"][m]] for m in methods}
        records.append(record)
        caption = f"{Path(path).name}: {record['class_name']} ({record['probability']:.1%})"
        rows.append({"caption": caption, "input": shown, "cells": cells})
    with atomic_path(folder.path("results.npz")) as tmp:
        np.savez_compressed(
            tmp,
            files=np.asarray([str(p) for p in paths]),
            class_index=np.asarray(targets, np.int32),
            probabilities=probabilities.astype(np.float32),
            **{f"maps_{m}": maps[m] for m in methods},
        )
    folder.write_text("results.json", json.dumps({"model": model.name, "methods": list(methods), "images": records},
                                                 indent=1))
    write_index(folder.path("index.html"), title, rows, list(methods), notes=f"model {model.name}; seed {seed}",
                extra_html=extra_html)
    for under in ("overlays", "audio"):  # an earlier run's pictures and clips must not stay beside these
        folder.remove_stale(written, under)
    return records
