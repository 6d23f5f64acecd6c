"""Rewrites run folders of an earlier jaxplain (``config.json`` of ``jaxplain evaluate``, ``job.json`` of
``jaxplain explain --data``) as ``run.json`` with every resolved setting of each method.

Earlier folders recorded the settings given plus, from some date on, each method's defaults (``defaults``) and what
its input-dependent defaults stood for (``resolved``). This script makes each method's settings whole: the values
given, then the recorded defaults, then, for settings a run did not record, the value every run before them used
where that differs from today's default (``EARLIER``), else today's default; the recorded ``resolved`` values
replace ``"auto"`` and ``None``. The result is what ``run.json`` holds today, so the folder says in full what its
table was made with. Fingerprints of the weights and data cannot be recovered, so a migrated folder is a record,
not a resumable run (``resumable: false``)::

    python experiments/migrate_run_folders.py results/*/     # writes run.json beside each config.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jaxplain.errors import UsageError
from jaxplain.explainers import Context, configure
from jaxplain.runs.identity import FORMAT, RUN

# settings whose default today is not what runs before the setting existed did (GFI's weights were clamped at 0
# and its mask min-max normalised; relabel's student read the signed change)
EARLIER = {"gfi": {"channel_weights": "non_negative", "mask_normalisation": "min_max"},
           "relabel": {"student_input": "change"}}
INPUT_SHAPES = {"efficientnet_lite0": (224, 224, 3), "cifar10_resnet": (32, 32, 3), "cifar10_resnet_small": (32, 32, 3),
                "spoken_digits_cnn": (96, 64, 1)}
NUM_CLASSES = {"efficientnet_lite0": 1000, "cifar10_resnet": 10, "cifar10_resnet_small": 10, "spoken_digits_cnn": 10}


def migrate_method(spec: str, given: dict, defaults: dict, resolved: dict, context: Context) -> dict:
    method, preset, settings = configure(spec)
    names = {name for name, _, _ in settings.describe()}
    effective = {k: v for k, v in defaults.items() if k in names}
    effective |= {k: v for k, v in EARLIER.get(method.name, {}).items() if k not in defaults and k not in given}
    effective |= {k: v for k, v in given.items() if k in names}
    effective |= {k: v for k, v in resolved.items() if k in names and given.get(k) is None}
    unknown = sorted(set(given) - names)
    if unknown:
        raise UsageError(f"{spec} was given {unknown}, which {method.name} no longer has")
    concrete = method.preset(preset).settings.replace(**effective).resolve(context)
    return {"method": method.name, "preset": preset, "settings": json.loads(json.dumps(concrete.to_json())),
            "learned": None}


def migrate(folder: Path) -> Path:
    old = folder / "config.json" if (folder / "config.json").exists() else folder / "job.json"
    record = json.loads(old.read_text())
    model = record.get("model", "efficientnet_lite0")
    context = Context(model, INPUT_SHAPES[model], NUM_CLASSES[model])
    aliases = record.get("aliases", {})
    methods = {label: migrate_method(aliases.get(label, label), given, record.get("defaults", {}).get(label, {}),
                                     record.get("resolved", {}).get(label, {}), context)
               for label, given in record["methods"].items()}
    if "defaults" not in record:  # runs before defaults were recorded: their job files pinned what had changed
        for entry in methods.values():
            entry["recorded"] = "the settings given; the others at the defaults of jaxplain as of 2026-12-06"
    kind = "an evaluation" if old.name == "config.json" else "a dataset job"
    options = {k: record[k] for k in ("protocol", "metrics", "target", "localisation_alpha", "dtype", "iou_threshold",
                                      "limit", "process_count") if k in record}
    run = {"format": FORMAT, "kind": kind, "resumable": False, "migrated_from": old.name,
           "model": {"name": model, "weights": None}, "data": {"spec": record.get("data"), "fingerprint": None},
           "seed": record.get("seed", 0), **options, "methods": methods}
    (folder / RUN).write_text(json.dumps(run, indent=1) + "\n")
    old.unlink()
    return folder / RUN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    for folder in parser.parse_args().folders:
        old = folder / "config.json" if (folder / "config.json").exists() else folder / "job.json"
        if not old.exists():
            continue
        if "methods" not in json.loads(old.read_text()):  # another script's record (relabel_study.py): kept as it is
            print(f"skipped {old}: not written by jaxplain evaluate or explain --data")
            continue
        print(f"wrote {migrate(folder)}")


if __name__ == "__main__":
    main()
