"""The leaderboard's tables, from the per-image scores kept in results/leaderboard/ (see experiments/leaderboard.py).

Each table lists one row per method with its mean scores ± standard error, n, and the paired difference of its
``insertion - deletion`` (or GridPG) to the table's best method over the images both explained. A row names the
run folder it comes from; rows of different folders pair by image index (the same data, limit and seed).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"
BEST_MIN_IMAGES = 16  # a row is the table's best (the one others pair with) only with this many images, or the
# median row's count where that is fewer (so that a few long rows do not leave the best to the anchors)


@dataclass(frozen=True)
class Row:
    label: str  # the method as the table names it
    folder: str  # results/leaderboard/FOLDER
    method: str  # the label in that run
    note: str = ""


@dataclass(frozen=True)
class Table:
    title: str
    caption: str
    rows: tuple[Row, ...]
    score: str = "ins-del"  # the column the best method and the paired differences use: ins-del or gridpg
    papers: dict = field(default_factory=dict)  # row label -> the paper's own figure, where the protocol matches
    sanity: str = ""  # the run (results/leaderboard/NAME) whose records hold each method's randomisation score
    comparisons: tuple[tuple[str, str], ...] = ()  # (row, row) pairs whose paired difference is stated under the table


IMAGENET = Table(
    "ImageNet: EfficientNet-Lite0, imagenet-dev test split",
    "The first images of the imagenet-dev test split (odd rows less the first 8; no choice of any default was made "
    "on them; the job files ask for 64, n says how many each row has so far), each explained for the class the "
    "teacher predicts. Deletion and insertion follow the RISE authors' "
    "code (`rise_fast`: their `gkern(11, 5)` insertion substrate and pixel order, 1792 px per step; checked against a "
    "port of their `CausalMetric`, tests/test_rise_metric_parity.py). Sanity: the rank correlation of |map| on the "
    "trained teacher with |map| on the teacher with every layer's weights shuffled (model parameter randomisation, "
    "Adebayo et al. 2018; job `imagenet_sanity`, for the methods whose second explanation is cheap): near 1, the map "
    "does not depend on what the model learned. Paper's figure: what the paper reports for the method on ImageNet "
    "with a ResNet-50 teacher and 224 px per step: another teacher, other images and a finer protocol, so a scale "
    "to read ours against, not a paired comparison.",
    (Row("relabel", "imagenet_relabel", "relabel"), Row("relabel:paper", "imagenet_relabel", "relabel:paper"),
     Row("gfi", "imagenet_fast", "gfi"), Row("gfi:paper", "imagenet_fast", "gfi:paper"),
     Row("gfi:reference", "imagenet_fast", "gfi:reference"),
     Row("dax", "imagenet_dax", "dax"), Row("dax, untrained network", "imagenet_dax", "dax_untrained"),
     Row("dax:reference", "imagenet_dax_reference", "dax:reference", "first 16 images"),
     Row("surrogate", "imagenet_fast", "surrogate"), Row("surrogate:paper", "imagenet_fast", "surrogate:paper"),
     Row("rise", "imagenet_rise", "rise"), Row("rise:reference", "imagenet_rise_reference", "rise:reference",
                                                "first 32 images"),
     Row("gradcam", "imagenet_anchors", "gradcam"), Row("scorecam", "imagenet_sampling", "scorecam"),
     Row("lime", "imagenet_sampling", "lime"), Row("lime:reference", "imagenet_sampling", "lime:reference"),
     Row("occlusion", "imagenet_fast", "occlusion"), Row("extremal", "imagenet_sampling", "extremal"),
     Row("gradient", "imagenet_fast", "gradient"), Row("integrated_gradients", "imagenet_fast", "integrated_gradients"),
     Row("smoothgrad", "imagenet_fast", "smoothgrad"), Row("centre", "imagenet_anchors", "centre"),
     Row("random", "imagenet_anchors", "random")),
    papers={"relabel:paper": "del 0.0627, ins 0.7190 (ResNet-50; seed 001)",
            "rise": "del 0.1048, ins 0.7719 (ResNet-50; RISE paper)",
            "surrogate:paper": "del 0.1211, ins 0.7049 (ResNet-50; seed 004 Table 4)",
            "gradcam": "del 0.1253, ins 0.6785 (ResNet-50; seed 004 Table 4)",
            "lime:reference": "del 0.1217, ins 0.6940 (ResNet-50; seed 004 Table 4)"},
    sanity="imagenet_sanity",
    comparisons=(("relabel", "relabel:paper"), ("relabel", "rise"), ("relabel", "gradcam"),
                 ("dax", "dax, untrained network"), ("dax", "random"), ("dax", "gradcam"), ("dax", "rise"),
                 ("rise", "rise:reference")),
)

CIFAR10 = Table(
    "CIFAR-10: cifar10_resnet_small, CIFAR-10 test",
    "The first CIFAR-10 test images (no choice was made on them; development choices used test[5000:]; the job file "
    "asks for 100, n says how many each row has so far), each explained for the predicted class; `rise_fast` "
    "protocol at 32 px (37 px per step). DAX, its untrained network and random have a job of their own "
    "(`cifar10_dax`: the same images, settings and seeds, on further images).",
    tuple(Row("dax, untrained network" if label == "dax_untrained" else label,
              "cifar10_dax" if label in ("dax", "dax_untrained", "random") else "cifar10", label) for label in (
        "relabel", "relabel:paper", "gfi", "gfi:paper", "gfi:reference", "dax", "dax_untrained", "dax:reference",
        "surrogate", "surrogate:paper", "rise", "gradcam", "scorecam", "lime", "occlusion", "extremal", "gradient",
        "integrated_gradients", "smoothgrad", "centre", "random")),
    comparisons=(("dax", "dax, untrained network"), ("dax", "random"), ("dax:reference", "random")),
)

GRIDS_IMAGENET = Table(
    "Localisation: ImageNet 2 x 2 grids, 256 held-out cells",
    "Grids of four held-out imagenet-dev images of different classes, each confidently classified on its own "
    "(`jaxplain data grids`); each cell's class explained on the whole grid. GridPG: the share of positive "
    "attribution inside the cell (0.25 for a uniform map); localisation error: the box of the largest region of "
    "the map above 1.1 x its mean misses the cell (IoU < 0.5). Runs of the development studies "
    "([localisation](../docs/studies/localisation.md)); a row whose run used other settings than today's says so.",
    (Row("gradcam", "studies/imagenet_grids_cpu", "gradcam"), Row("lime", "studies/imagenet_grids_cpu", "lime"),
     Row("relabel", "studies/imagenet_grids_relabel", "relabel", "60 cells"),
     Row("occlusion", "studies/imagenet_grids_test", "occlusion"),
     Row("scorecam", "studies/imagenet_grids_cpu", "scorecam"),
     Row("gfi", "studies/imagenet_grids_gfi_rectified", "gfi_rectified"),
     Row("extremal", "studies/imagenet_grids_more", "extremal", "36 cells"),
     Row("integrated_gradients", "studies/imagenet_grids_test", "integrated_gradients"),
     Row("gradient", "studies/imagenet_grids_test", "gradient"),
     Row("smoothgrad", "studies/imagenet_grids_test", "smoothgrad"),
     Row("rise", "studies/imagenet_grids_more", "rise", "36 cells"),
     Row("centre", "studies/imagenet_grids_cpu", "centre"), Row("random", "studies/imagenet_grids_cpu", "random")),
    score="gridpg", papers={"gfi": "localisation error 38.2 % (VGG-19 on ImageNet boxes; GFI paper)"},
)

GRIDS_CIFAR10 = Table(
    "Localisation: CIFAR-10 2 x 2 grids, 256 test cells",
    "As above on grids of CIFAR-10 test images (`cifar10_resnet_small`).",
    (Row("gradcam", "studies/cifar10_grids_test", "gradcam"), Row("occlusion", "studies/cifar10_grids_test", "occlusion"),
     Row("lime", "studies/cifar10_grids_more", "lime"), Row("gfi", "studies/cifar10_grids_gfi_rectified", "gfi_rectified"),
     Row("relabel", "studies/cifar10_grids_more", "relabel"), Row("extremal", "studies/cifar10_grids_more", "extremal"),
     Row("gradient", "studies/cifar10_grids_test", "gradient"), Row("scorecam", "studies/cifar10_grids_more", "scorecam"),
     Row("integrated_gradients", "studies/cifar10_grids_test", "integrated_gradients"),
     Row("smoothgrad", "studies/cifar10_grids_test", "smoothgrad"), Row("rise", "studies/cifar10_grids_more", "rise"),
     Row("dax", "studies/cifar10_grids_dax", "dax", "32 cells"),
     Row("centre", "studies/cifar10_grids_test", "centre"), Row("random", "studies/cifar10_grids_test", "random")),
    score="gridpg",
)

AUDIO = Table(
    "Audio: spoken digits, 40 clips of held-out voices",
    "The log-mel CNN teacher (`spoken_digits_cnn`) on 40 test clips of voices it never heard; deletion and "
    "insertion over time-frequency bins (jaxplain's earlier `fast` protocol, a normalised Gaussian substrate).",
    tuple(Row(m, "studies/spoken_digits_test", m) for m in ("occlusion", "rise", "gradcam", "gradient", "dax",
                                                               "random")),
)

TABLES = (IMAGENET, CIFAR10, GRIDS_IMAGENET, GRIDS_CIFAR10, AUDIO)


def load_scores(folder: Path) -> dict[str, dict[int, dict]]:
    """``{method: {index: {score: value}}}`` of a kept run (``results/leaderboard/NAME``), or of a development
    study's run from the archive of their per-image scores (``results/studies/NAME``)."""
    out: dict[str, dict[int, dict]] = {}
    archive = folder.parent / "scores.csv.gz" if folder.parent.name == "studies" else folder / "scores.csv.gz"
    if not archive.exists():
        return out
    with gzip.open(archive, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if folder.parent.name == "studies" and row["run"] != folder.name:
                continue
            values = {k: float(v) for k, v in row.items()
                      if k not in ("method", "index", "id", "run", "file", "cell", "map_flag") and v not in ("", None)}
            out.setdefault(row["method"], {})[int(row["index"])] = values
    return out


def differs_from_today(folder: Path, method: str, label: str) -> bool:
    """Whether the run made ``method`` with settings other than today's for ``label`` (``NAME[:PRESET]``)."""
    from jaxplain.explainers import Context, configure

    path = folder / "run.json"
    if not path.exists():
        return False
    run = json.loads(path.read_text())
    recorded = run["methods"][method]["settings"]
    model = run["model"]["name"]
    shape = {"efficientnet_lite0": (224, 224, 3), "spoken_digits_cnn": (96, 64, 1)}.get(model, (32, 32, 3))
    today = configure(label)[2].resolve(Context(model, shape, 1000)).to_json()
    return any(json.loads(json.dumps(today.get(k))) != v for k, v in recorded.items())


def score_of(values: dict, score: str) -> float:
    return values["insertion"] - values["deletion"] if score == "ins-del" else values[score]


def mean_se(values) -> tuple[float, float]:
    x = np.asarray(list(values), np.float64)
    if not len(x):
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def speed(folder: Path, method: str) -> str:
    """maps/s from the run's summary (the device and dtype are the run's)."""
    path = folder / "summary.csv"
    if not path.exists():
        return "—"
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["method"] == method and row.get("maps_per_s") not in (None, "", "nan"):
                return f"{float(row['maps_per_s']):.3g}"
    return "—"


def sanity_cell(records: dict[int, dict]) -> str:
    """Mean ± standard error (n) of a method's model-randomisation scores, or a dash where it was not run."""
    values = [v["randomisation"] for v in records.values() if "randomisation" in v]
    if not values:
        return "—"
    m, se = mean_se(values)
    return f"{m:.2f} ± {se:.2f} ({len(values)})" if len(values) > 1 else f"{m:.2f} (1)"


def run_folder(results: Path, folder: str) -> Path:
    """Where a row's run is kept: ``results/studies/NAME`` for a development study's, else
    ``results/leaderboard/NAME``."""
    return results / folder if folder.startswith("studies/") else results / "leaderboard" / folder


def render(table: Table, results: Path) -> str:
    """One table in markdown, from the runs kept under ``results`` (the repository's results/)."""
    cache: dict[str, dict] = {}
    loaded = lambda folder: cache.setdefault(folder, load_scores(run_folder(results, folder)))
    scores = {row.label: loaded(row.folder).get(row.method, {}) for row in table.rows}
    present = [row for row in table.rows if scores[row.label]]
    if not present:
        return f"### {table.title}\n\n(not run yet: `python experiments/leaderboard.py run`)\n"
    means = {row.label: mean_se(score_of(v, table.score) for v in scores[row.label].values())[0] for row in present}
    enough = min(BEST_MIN_IMAGES, int(np.median([len(scores[row.label]) for row in present])))
    best = max((row for row in present if len(scores[row.label]) >= enough), key=lambda r: means[r.label])
    ordered = sorted(present, key=lambda r: -means[r.label])
    lines = [f"### {table.title}", "", table.caption, ""]
    sanity = loaded(table.sanity) if table.sanity else {}
    if table.score == "ins-del":
        header = ("| method | n | deletion ↓ | insertion ↑ | insertion − deletion ↑ | vs best (paired) | "
                  "maps/s (CPU) | " + ("sanity: randomised model ↓ | " if table.sanity else "") + "paper's figure |")
    else:
        header = "| method | n | GridPG ↑ | localisation error ↓ | vs best (paired) | paper's figure |"
    lines += [header, "| --- |" + " ---: |" * (header.count("|") - 2)]
    for row in ordered:
        mine = scores[row.label]
        common = sorted(set(mine) & set(scores[best.label]))
        diff = [score_of(mine[i], table.score) - score_of(scores[best.label][i], table.score) for i in common]
        d, d_se = mean_se(diff)
        versus = "best" if row is best else f"{d:+.3f} ± {d_se:.3f} ({len(common)})"
        label = f"**{row.label}**" if row.label.split(":")[0] in ("relabel", "gfi", "dax", "surrogate") else row.label
        notes = [row.note] if row.note else []
        if row.folder.startswith("studies/") and differs_from_today(run_folder(results, row.folder), row.method,
                                                                    row.label):
            notes.append(f"settings of [its run](studies/{row.folder.split('/')[1]}/run.json), not today's")
        note = f" ({'; '.join(notes)})" if notes else ""
        paper = table.papers.get(row.label, "")
        if table.score == "ins-del":
            dl, dl_se = mean_se(v["deletion"] for v in mine.values())
            ins, ins_se = mean_se(v["insertion"] for v in mine.values())
            gap, gap_se = mean_se(v["insertion"] - v["deletion"] for v in mine.values())
            check = f"{sanity_cell(sanity.get(row.method, {}))} | " if table.sanity else ""
            lines.append(f"| {label}{note} | {len(mine)} | {dl:.3f} ± {dl_se:.3f} | {ins:.3f} ± {ins_se:.3f} | "
                         f"{gap:.3f} ± {gap_se:.3f} | {versus} | {speed(run_folder(results, row.folder), row.method)} | "
                         f"{check}{paper} |")
        else:
            g, g_se = mean_se(v["gridpg"] for v in mine.values())
            e, e_se = mean_se(v.get("localisation_miss", math.nan) for v in mine.values())
            lines.append(f"| {label}{note} | {len(mine)} | {g:.3f} ± {g_se:.3f} | {e:.3f} ± {e_se:.3f} | {versus} | "
                         f"{paper} |")
    lines.append("")
    for first, second in table.comparisons:
        if scores.get(first) and scores.get(second):
            lines.append(paired_line(first, second, scores[first], scores[second], table.score))
    if table.comparisons:
        lines.append("")
    return "\n".join(lines)


def paired_line(first: str, second: str, a: dict[int, dict], b: dict[int, dict], score: str) -> str:
    """One stated comparison: the mean paired difference of two rows over their common images, its standard error,
    and on how many images the first is ahead."""
    common = sorted(set(a) & set(b))
    diff = [score_of(a[i], score) - score_of(b[i], score) for i in common]
    d, d_se = mean_se(diff)
    ahead = sum(x > 0 for x in diff)
    ratio = f"{d / d_se:.1f} standard errors; " if d_se > 0 else ""  # nan (one image) compares false
    return f"* {first} − {second}: {d:+.3f} ± {d_se:.3f} over {len(common)} images ({ratio}ahead on {ahead})"


def write_tables(results: Path, readme: Path) -> None:
    """Replaces the text between the leaderboard markers of ``readme`` with the tables."""
    body = "\n".join(render(table, results) for table in TABLES)
    text = readme.read_text() if readme.exists() else f"{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(f"wrote the leaderboard into {readme}")


def settings_of(results: Path, folder: str, method: str) -> dict:
    return json.loads((run_folder(results, folder) / "run.json").read_text())["methods"][method]
