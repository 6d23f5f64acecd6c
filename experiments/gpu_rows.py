"""Every GPU row of the leaderboard in one command, most valuable first, each written as soon as it is measured.

On a GPU machine (JAX, Flax, optax, orbax, chex, PyTorch and scikit-image preinstalled), from the repository root:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/wheels/*.whl
    PYTHONPATH=/tmp/site:. JAXPLAIN_DATA=.carry/data python3 experiments/gpu_rows.py --out "$OUT/gpu"

(`experiments/gpu_wheels.sh` fetches the wheels of experiments/gpu_requirements.txt and the images into `.carry/`
beforehand, on a machine with PyPI; the device tool carries `.carry/wheels` and `.carry/data`.) The rows come back
into results/gpu/.
Steps, in order, each skipped when the time left (``--budget`` seconds in all) is too short for it:

1. ``roofline.csv``: the teacher's forward images/s, float32 and bfloat16, at batches up to ``--max-batch`` (each row
   with the JAX version, device count and date: the run's environment);
2. ``methods.csv``: maps/s of every method at its defaults and of the seed methods' presets, float32 and
   bfloat16, at a batch that fills the device, with the fraction of the roofline of the same dtype;
3. ``race.csv``: the same maps in captum, pytorch-grad-cam and batched PyTorch RISE on the same weights, images
   and device, ratio jaxplain / peer;
4. ``metrics.csv``: metric evaluations per second against Quantus 0.6 on the same device, images and Grad-CAM maps
   (experiments/metrics_race.py);
5. ``memory.csv``: peak device memory per method against the batch size;
6. ``job.csv``: ``explain --data`` maps/s against the same method on images already in memory; ``decoding.csv``:
   images/s the host decodes and preprocesses on a thread pool against a process pool (experiments/decoding.py);
7. ``leaderboard.csv``: per-image deletion/insertion of the seed methods, Grad-CAM and RISE on the leaderboard's 64
   images (the evaluation folders stay in ``--work``; a run on the same machine goes on where it stopped).

The output folder holds at most eight files, flat, as the device tool brings back.

``--dry-run`` runs every step on the CPU with tiny sizes (two images, a handful of samples), so the command cannot
rot between GPU runs (tests/test_gpu_rows.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from benchmark import append_rows, device_name, forwards_per_map, photos, timed  # noqa: E402  (experiments/, beside this script)
from decoding import measure as decoding_rates  # noqa: E402
from metrics_race import measure as metric_rates  # noqa: E402

PRESETS = ("relabel", "relabel:paper", "gfi", "gfi:paper", "gfi:reference", "dax", "dax:reference", "surrogate",
           "surrogate:paper", "rise", "rise:reference", "gradcam", "scorecam", "lime", "occlusion", "extremal",
           "gradient", "integrated_gradients", "smoothgrad")
ONE_PASS = ("gradcam", "gradient", "surrogate", "surrogate:paper")
DRY_PRESETS = ("gradcam", "rise", "surrogate")  # a one-pass, a sampling and an amortized program
# small settings of the dry run: every method's code path in seconds on a CPU
DRY = {"relabel": {"num_samples": 20, "chunk": 10, "probe_samples": 4, "student_steps": 4},
       "relabel:paper": {"num_samples": 20, "chunk": 10, "student_steps": 4},
       "gfi": {"steps": 2, "inversion_steps": 1}, "gfi:paper": {"steps": 2, "inversion_steps": 1},
       "gfi:reference": {"steps": 2, "inversion_steps": 1},
       "dax": {"num_samples": 32, "chunk": 16, "averaged_epochs": 2, "resolution": 32},
       "dax:reference": {"num_samples": 32, "chunk": 16, "averaged_epochs": 2, "resolution": 32},
       "rise": {"num_masks": 20, "chunk": 10}, "rise:reference": {"num_masks": 20, "chunk": 10},
       "scorecam": {"chunk": 320, "layer": "stage7"}, "lime": {"num_samples": 20, "chunk": 10},
       "extremal": {"iterations": 2}, "integrated_gradients": {"steps": 2}, "smoothgrad": {"samples": 2}}


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def write_rows(path: Path, rows: list[dict]) -> None:
    if rows:
        append_rows(path, list(rows[0]), rows)


def roofline(model, out: Path, args, budget: Budget) -> dict:
    """images/s of the teacher per dtype at its best batch."""
    from jaxplain import runner
    from jaxplain.model import computing_in

    best = {}
    batches = [b for b in (2, 32, 64, 128, 256, 512) if b <= args.max_batch]
    for dtype in ("float32", "bfloat16"):
        teacher = computing_in(model, dtype)
        rows = []
        for batch in batches:
            if budget.left() < 20:
                break
            images = photos(teacher, batch, None)
            seconds = timed(lambda: runner.predict(teacher, images, batch_size=batch), args.repeats)
            rows.append({"device": device_name(), "dtype": dtype, "batch": batch,
                         "images_per_s": round(batch / seconds, 1), **environment(args)})
        write_rows(out / "roofline.csv", rows)
        if rows:
            best[dtype] = max(rows, key=lambda r: r["images_per_s"])["images_per_s"]
    return best


def environment(args) -> dict:
    return {"devices": jax.device_count(), "jax": jax.__version__, "dry_run": args.dry_run,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def settings_of(spec: str, args) -> dict:
    return DRY.get(spec, {}) if args.dry_run else {}


def methods(model, out: Path, args, budget: Budget, best: dict) -> None:
    from jaxplain import runner
    from jaxplain.model import computing_in

    for dtype in ("float32", "bfloat16"):
        teacher = computing_in(model, dtype)
        for spec in (DRY_PRESETS if args.dry_run else PRESETS):
            if args.dry_run and dtype == "bfloat16" and spec != "gradcam":
                continue
            batch = args.batch if spec not in ONE_PASS else args.max_batch
            if budget.left() < 30:
                return
            images = photos(teacher, batch, None)
            labels = runner.predict(teacher, images).argmax(-1)
            options = settings_of(spec, args)
            try:
                seconds = timed(lambda: runner.explain(teacher, spec, images, labels, key=0, batch_size=batch,
                                                       **options), 1)
            except Exception as e:  # noqa: BLE001 - a method that cannot run here is a row that says why
                write_rows(out / "methods.csv", [{"device": device_name(), "dtype": dtype, "method": spec,
                                                  "batch": batch, "error": f"{type(e).__name__}: {str(e)[:100]}"}])
                continue
            forwards = forwards_per_map(spec, options, model)
            ceiling = best.get(dtype, 0) / forwards if forwards else None
            maps = batch / seconds
            write_rows(out / "methods.csv", [{
                "device": device_name(), "dtype": dtype, "method": spec, "batch": batch, "maps_per_s": round(maps, 3),
                "forwards_per_map": forwards, "roofline_maps_per_s": round(ceiling, 3) if ceiling else "",
                "fraction_of_roofline": round(maps / ceiling, 3) if ceiling else "", "settings": json.dumps(options),
                "error": ""}])


def race(model, out: Path, args, budget: Budget) -> None:
    import torch

    from jaxplain import runner
    from jaxplain.explainers.lime import host_superpixels
    from jaxplain.models.torch_reference import TorchLite0, nchw
    from race import peers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_model = TorchLite0().eval().to(device)
    images = photos(model, args.race_images, None)
    labels = runner.predict(model, images).argmax(-1)
    x = nchw(images).to(device)
    masks, samples, steps = (20, 20, 2) if args.dry_run else (1000, 500, 31)
    work = argparse.Namespace(batch=min(args.batch * 4, 64) if not args.dry_run else 10, samples=samples,
                              masks=masks, ig_steps=steps)
    ours = {"gradcam": {}, "gradient": {}, "integrated_gradients": {"steps": steps, "baseline": "mean"},
            "occlusion": {"window": 56, "stride": 28}, "rise": {"num_masks": masks, "chunk": work.batch},
            "lime": {"num_samples": samples, "chunk": work.batch}, "scorecam": {"layer": "stage7"}}
    if args.dry_run:
        ours = {m: ours[m] for m in ("gradcam", "rise")}
    table = peers(torch_model, x, labels, host_superpixels(images), work)
    for method, settings in ours.items():
        if budget.left() < 40:
            return
        mine = timed(lambda: runner.explain(model, method, images, labels, batch_size=len(images), **settings), 1)
        name, peer = table[method]
        theirs = timed(lambda: (peer(), torch.cuda.synchronize() if device == "cuda" else None), 1)
        write_rows(out / "race.csv", [{"device": device_name(), "method": method, "peer": name,
                                       "images": len(images), "jaxplain_maps_per_s": round(len(images) / mine, 3),
                                       "peer_maps_per_s": round(len(images) / theirs, 3),
                                       "ratio": round(theirs / mine, 2), "work": json.dumps(settings)}])


def metrics(model, out: Path, args, budget: Budget) -> None:
    """Metric evaluations per second, jaxplain against Quantus, both on this device."""
    import torch

    from jaxplain.models.torch_reference import TorchLite0

    if budget.left() < 60:
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    write_rows(out / "metrics.csv", metric_rates(model, photos(model, args.race_images, None),
                                                 TorchLite0().eval().to(device), device, small=args.dry_run))


def memory(model, out: Path, args, budget: Budget) -> None:
    from jaxplain.runner import peak_memory

    for spec in (DRY_PRESETS[:1] if args.dry_run else PRESETS):
        for batch in ((1,) if args.dry_run else (1, args.batch)):
            if budget.left() < 20:
                return
            try:
                used = peak_memory(model, spec, batch_size=batch, **settings_of(spec, args))
            except Exception as e:  # noqa: BLE001
                write_rows(out / "memory.csv", [{"device": device_name(), "method": spec, "batch": batch,
                                                 "gib": "", "error": f"{type(e).__name__}: {str(e)[:100]}"}])
                continue
            write_rows(out / "memory.csv", [{"device": device_name(), "method": spec, "batch": batch,
                                             "gib": round(used / 2 ** 30, 3), "error": ""}])


def job(model, out: Path, args, budget: Budget) -> None:
    import tempfile

    from jaxplain import runner
    from jaxplain.data import open_source
    from jaxplain.data.loader import load_items
    from jaxplain.jobs import JobConfig, run_job

    source, _ = open_source(args.data, num_classes=model.num_classes)
    count = min(args.job_images, len(source))
    images = load_items(source, range(count), model.preprocessing).images
    labels = runner.predict(model, images).argmax(-1)
    for spec in ("gradcam",) if args.dry_run else ("gradcam", "surrogate"):
        if budget.left() < 40:
            return
        device = timed(lambda: runner.explain(model, spec, images, labels, batch_size=args.batch, fixed_shape=True), 1)
        with tempfile.TemporaryDirectory() as work:
            run_job(model, JobConfig({spec: {}}, args.data, limit=args.batch, batch_size=args.batch, examples=0),
                    Path(work) / "warm", report=lambda *_: None)
            start = time.perf_counter()
            run_job(model, JobConfig({spec: {}}, args.data, limit=count, batch_size=args.batch, examples=0),
                    Path(work) / "job", report=lambda *_: None)
            end_to_end = time.perf_counter() - start
        write_rows(out / "job.csv", [{"device": device_name(), "method": spec, "images": count, "batch": args.batch,
                                      "in_memory_maps_per_s": round(count / device, 2),
                                      "end_to_end_maps_per_s": round(count / end_to_end, 2),
                                      "ratio": round(device / end_to_end, 3)}])
    if budget.left() > 60:  # can the host's decoding keep the device fed, and would worker processes do better?
        write_rows(out / "decoding.csv", [{"device": device_name(), **row} for row in decoding_rates(
            args.data, images=8 if args.dry_run else args.job_images, max_workers=2 if args.dry_run else None)])


def leaderboard(out: Path, args, budget: Budget) -> None:
    """The seed methods, Grad-CAM and RISE on the leaderboard's images (folders in ``--work``, resumable); their
    per-image scores gathered into one file."""
    from jaxplain.evaluation.harness import EvaluationConfig, evaluate
    from jaxplain.runs.journal import read_records
    from jaxplain.zoo import load_model

    specs = ("relabel", "relabel:paper", "gfi", "gfi:paper", "gfi:reference", "dax", "dax:reference", "surrogate",
             "surrogate:paper", "gradcam", "rise")
    specs = ("gradcam",) if args.dry_run else specs
    labels_file = REPO / "runs" / "imagenet-dev-test.tsv"
    if not labels_file.exists():
        import subprocess

        subprocess.run([sys.executable, str(REPO / "experiments" / "split_labels.py"), args.data, "odd",
                        str(labels_file), "--skip", "8"], check=True)
    model = load_model("efficientnet_lite0")
    for spec in specs:
        if budget.left() < 60:
            return
        config = EvaluationConfig({spec: settings_of(spec, args)}, str(labels_file),
                                  limit=2 if args.dry_run else args.leaderboard_images, protocol="rise_fast",
                                  batch_size=args.batch, examples=0)
        folder = args.work / spec.replace(":", "@")
        evaluate(model, config, folder, report=lambda *_: None)
        write_rows(out / "leaderboard.csv", [
            {"device": device_name(), "method": r["method"], "index": r["index"], "id": r["id"],
             "deletion": r["deletion"], "insertion": r["insertion"], "seconds": r["seconds"]}
            for r in read_records(folder / "records.jsonl")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default=None, help="imagenet-dev (default $JAXPLAIN_DATA/imagenet-dev)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all steps")
    parser.add_argument("--batch", type=int, default=32, help="images per explain call of the sampling methods")
    parser.add_argument("--max-batch", type=int, default=256, help="largest batch of the roofline and one-pass methods")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--race-images", type=int, default=8)
    parser.add_argument("--job-images", type=int, default=256)
    parser.add_argument("--leaderboard-images", type=int, default=64)
    parser.add_argument("--steps", default="roofline,methods,race,metrics,memory,job,leaderboard")
    parser.add_argument("--work", type=Path, default=Path("/tmp/jaxplain-gpu-leaderboard"),
                        help="the leaderboard step's evaluation folders")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on any device: the same code path")
    args = parser.parse_args()
    if args.dry_run:
        args.batch, args.max_batch, args.repeats, args.race_images, args.job_images = 2, 2, 1, 2, 4
    args.data = args.data or str(Path(os.environ.get("JAXPLAIN_DATA", REPO.parent / "shared" / "data")) / "imagenet-dev")
    from jaxplain.zoo import load_model

    args.out.mkdir(parents=True, exist_ok=True)
    budget = Budget(args.budget)
    model = load_model("efficientnet_lite0")
    steps, failed = args.steps.split(","), []
    best = roofline(model, args.out, args, budget) if "roofline" in steps else {}
    for name, step in (("methods", lambda: methods(model, args.out, args, budget, best)),
                       ("race", lambda: race(model, args.out, args, budget)),
                       ("metrics", lambda: metrics(model, args.out, args, budget)),
                       ("memory", lambda: memory(model, args.out, args, budget)),
                       ("job", lambda: job(model, args.out, args, budget)),
                       ("leaderboard", lambda: leaderboard(args.out, args, budget))):
        if name in steps and budget.left() > 0:
            print(f"=== {name} ({budget.left():.0f} s left)", flush=True)
            try:
                step()
            except Exception:  # noqa: BLE001 - one failing step must not cost the device time of the others
                traceback.print_exc()
                failed.append(name)
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
