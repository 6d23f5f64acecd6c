"""The ``jaxplain`` command line (Typer: typed options, generated help, shell completion)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from jaxplain.errors import Interrupted, JaxplainError, UsageError
from jaxplain.interrupts import interruptible

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__ and "Explain image and audio classifiers with saliency maps.")

ModelOption = Annotated[str, typer.Option("--model", "-m", help="teacher name from `jaxplain models`")]
DtypeOption = Annotated[str, typer.Option(
    help="the teacher's compute dtype for explaining: float32, or bfloat16 (mixed precision: softmax and "
         "accumulations stay float32)")]
DataOption = Annotated[str, typer.Option("--data", "-d", help="labelled folder (with labels.tsv) or tfds:NAME[:SPLIT]")]
TfdsDirOption = Annotated[Optional[Path], typer.Option("--tfds-dir", help="TFDS data dir (default $TFDS_DATA_DIR)")]
RawDataOption = Annotated[
    Optional[Path], typer.Option("--raw-data", help="folder with cifar10-jpeg.tar.gz (default $JAXPLAIN_DATA)")
]
MemoryBudgetOption = Annotated[Optional[float], typer.Option(
    help="GiB per device a method may use: its chunk (samples per teacher call) and, if need be, the batch size are "
         "chosen to fit, from XLA's memory analysis (jaxplain.memory)")]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="hyper-parameter METHOD.NAME=VALUE or NAME=VALUE (all methods); repeatable"),
]


def from_command_line(ctx: typer.Context) -> set[str]:
    """Names of the options the user typed (as opposed to defaults)."""
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return {name for name, source in sources.items() if source is not None and source.name == "COMMANDLINE"}


def _command_line() -> str:
    """This invocation as a user would type it (recorded in trained artefacts)."""
    return " ".join(["jaxplain", *sys.argv[1:]])


def parse_settings(settings: list[str] | None, labels: list[str]) -> dict[str, dict]:
    """``["rise.num_masks=2000", "chunk=50"]`` -> ``{"rise": {"num_masks": 2000}, ...}`` for the method ``labels``
    (``NAME``, ``NAME:PRESET`` or ``LABEL``). ``METHOD.NAME`` applies to the label ``METHOD``, or to the one label
    of that method; ``NAME`` alone to every label."""
    out: dict[str, dict] = {label: {} for label in labels}
    for item in settings or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected NAME=VALUE or METHOD.NAME=VALUE")
        name, raw = item.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = float(raw) if raw.strip().lower() in ("inf", "-inf", "+inf", "nan") else raw
        target, _, field = name.rpartition(".")
        if not field:
            raise UsageError(f"--set {item!r}: the setting's name is empty")
        if not target:
            chosen = labels
        elif target in out:
            chosen = [target]
        else:
            chosen = [label for label in labels if label.partition(":")[0] == target]
            if len(chosen) > 1:
                raise UsageError(f"--set {item!r}: {target!r} matches {', '.join(chosen)}; name one, e.g. "
                                 f"{chosen[-1]}.{field}={raw}")
            if not chosen:
                raise UsageError(f"--set {item!r}: method {target!r} is not among the methods {', '.join(labels)}")
        for label in chosen:
            out[label][field] = value
    return out


def split_methods(methods: str) -> list[str]:
    """Comma-separated method names (``NAME`` or ``NAME:PRESET``), each given once."""
    names = [m.strip() for m in methods.split(",")]
    if not any(names):
        raise UsageError("--method is empty; give one or more method names separated by commas")
    if not all(names):
        raise UsageError(f"--method {methods!r} has an empty name; separate names by single commas")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--method names {repeated[0]!r} twice; give each method once (LABEL=METHOD runs a variant "
                         "under its own label with `jaxplain evaluate`)")
    return names


def teacher_in(name: str, dtype: str):
    """The named teacher computing in ``dtype`` (see :func:`jaxplain.model.computing_in`)."""
    from jaxplain.model import computing_in
    from jaxplain.zoo import load_model

    try:
        return computing_in(load_model(name), dtype)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--dtype {dtype!r}: {e}") from e


def split_labelled_methods(methods: str) -> tuple[list[str], dict[str, str]]:
    """``"rise,rise_small=rise:reference"`` -> labels ``["rise", "rise_small"]`` and ``{"rise_small": "rise:reference"}``.

    A ``LABEL=METHOD`` entry runs METHOD (``NAME`` or ``NAME:PRESET``) under its own label, so one evaluation can
    compare settings of the same method (set them with ``--set LABEL.NAME=VALUE``).
    """
    labels, aliases = [], {}
    for entry in split_methods(methods):
        label, _, spec = entry.partition("=")
        label, spec = label.strip(), spec.strip()
        if not label or (("=" in entry) and not spec):
            raise UsageError(f"--methods entry {entry!r}: write METHOD or LABEL=METHOD, both non-empty")
        if label in labels:
            raise UsageError(f"--methods gives the label {label!r} twice; give each label once")
        labels.append(label)
        if spec:
            aliases[label] = spec
    return labels, aliases


@app.command()
def explain(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (a --data job resumes into it)")],
    images: Annotated[Optional[list[Path]], typer.Argument(
        help="image files (JPEG, PNG or any Pillow format), or .wav clips for an audio model")] = None,
    data: Annotated[Optional[str], typer.Option(
        "--data", "-d", help="explain a whole dataset instead (labelled folder or tfds:NAME[:SPLIT]), streamed "
                             "and resumable; maps in OUT/maps-METHOD-pP.npy")] = None,
    model: ModelOption = "efficientnet_lite0",
    method: Annotated[str, typer.Option("--method", help="method name(s), comma-separated")] = "gradcam",
    label: Annotated[Optional[list[int]], typer.Option("--label", help="class to explain (default: predicted)")] = None,
    limit: Annotated[Optional[int], typer.Option(help="with --data: only the first N items")] = None,
    target: Annotated[str, typer.Option(help="with --data: class explained, predicted or label")] = "predicted",
    examples: Annotated[int, typer.Option(help="with --data: overlays for the first K images")] = 4,
    seed: int = 0,
    batch_size: int = 8,
    settings: SetOption = None,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
    dtype: DtypeOption = "float32",
    memory_budget: MemoryBudgetOption = None,
    coordinator: Annotated[Optional[str], typer.Option(
        help="with --data on several hosts: HOST:PORT of process 0 (default: detected on TPU pods, SLURM)")] = None,
    num_processes: Annotated[Optional[int], typer.Option(help="with --coordinator: how many processes")] = None,
    process_id: Annotated[Optional[int], typer.Option(help="with --coordinator: this process's id")] = None,
    coordinator_timeout: Annotated[float, typer.Option(
        help="with several hosts: seconds to wait for every process to join before giving up")] = 300.0,
):
    """Explain IMAGES (one overlay per image and method, results.npz/results.json and index.html), or every
    image of --data (a streamed, resumable dataset job; see jaxplain.jobs)."""
    from jaxplain.explain_files import explain_files
    from jaxplain.memory import plan_methods

    methods = split_methods(method)
    hyperparameters = parse_settings(settings, methods)
    distributed = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    if data is None:
        dataset_only = {"--limit": limit, "--target": None if target == "predicted" else target,
                        "--examples": None if examples == 4 else examples, **distributed}
        given = [name for name, value in dataset_only.items() if value is not None]
        if given:
            raise UsageError(f"{given[0]} applies to a dataset job (--data); it has no meaning for image files")
        if not images:
            raise UsageError("no images given; pass one or more image files, or --data")
        teacher = teacher_in(model, dtype)
        batch_size, hyperparameters = plan_methods(teacher, hyperparameters, memory_budget, batch_size,
                                                   report=typer.echo)
        records = explain_files(teacher, methods, images, out, labels=label, seed=seed,
                                hyperparameters=hyperparameters, batch_size=batch_size)
        for record in records:
            typer.echo(f"{record['file']}: {record['class_name']} ({record['probability']:.1%})")
        typer.echo(f"wrote {out / 'index.html'}")
        return
    from jaxplain.jobs import JobConfig, run_job, summary
    from jaxplain.parallel import initialise_distributed

    if images:
        raise UsageError("give image files or --data, not both")
    if label:
        raise UsageError("--label applies to image files; with --data use --target label or predicted")
    process, processes = initialise_distributed(coordinator, num_processes, process_id,
                                                timeout=coordinator_timeout, report=typer.echo)  # before any JAX work
    teacher = teacher_in(model, "float32")
    batch_size, hyperparameters = plan_methods(teacher_in(model, dtype), hyperparameters, memory_budget, batch_size,
                                               report=typer.echo)
    config = JobConfig({m: hyperparameters.get(m, {}) for m in methods}, data, limit, seed, batch_size,
                       examples, target, process, processes, dtype)
    counts = run_job(teacher, config, out, data_dir=tfds_dir, raw_data=raw_data, report=typer.echo)
    typer.echo(f"{counts['explained']} images explained, {counts['skipped']} already done; {summary(out)}")
    typer.echo(f"read them with jaxplain.jobs.read_maps({str(out)!r}, METHOD)")


@app.command()
def accuracy(
    data: DataOption,
    model: ModelOption = "efficientnet_lite0",
    limit: Annotated[Optional[int], typer.Option(help="only the first N items")] = None,
    batch_size: int = 64,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
):
    """Top-1 and top-5 accuracy of MODEL on a labelled dataset."""
    from jaxplain.evaluation.accuracy import accuracy as measure
    from jaxplain.zoo import load_model

    teacher = load_model(model)
    result = measure(teacher, data, limit=limit, batch_size=batch_size, data_dir=tfds_dir, raw_data=raw_data)
    typer.echo(f"{model} on {data}: top-1 {result['top1']:.2%}, top-5 {result['top5']:.2%} ({result['n']} images)")


@app.command()
def evaluate(
    ctx: typer.Context,
    data: Annotated[Optional[str], typer.Option(
        "--data", "-d", help="labelled folder (with labels.tsv) or tfds:NAME[:SPLIT]")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="output folder (rerun with the same one to resume)")] = None,
    model: ModelOption = "efficientnet_lite0",
    methods: Annotated[str, typer.Option("--methods", help="method names, comma-separated; LABEL=METHOD runs a variant")] = "gradcam,random",
    limit: Annotated[Optional[int], typer.Option(help="only the first N items")] = None,
    protocol: Annotated[str, typer.Option(
        help="deletion/insertion: rise (the RISE authors' code, 224 px per step), rise_fast (theirs at 1792 px), or "
             "jaxplain's earlier exact and fast (a normalised Gaussian substrate)")] = "rise_fast",
    seed: int = 0,
    batch_size: int = 16,
    examples: Annotated[int, typer.Option(help="images shown in index.html")] = 8,
    metrics: Annotated[Optional[str], typer.Option(
        help="comma-separated, of: deletion_insertion, road, faithfulness_correlation, region_perturbation, "
             "sparseness, complexity, sensitivity, randomisation, random_logit; on grids also gridpg, localisation, "
             "iou, relevance_mass, relevance_rank (default: deletion_insertion, plus gridpg and localisation on grids "
             "from `jaxplain data grids`)")] = None,
    target: Annotated[str, typer.Option(help="class explained: predicted, label, or auto (label on grids)")] = "auto",
    localisation_alpha: Annotated[float, typer.Option(
        help="localisation threshold: alpha x the mean of the min-max normalised map (GFI paper: 1.1)")] = 1.1,
    iou_threshold: Annotated[float, typer.Option(
        help="iou metric: the map selects pixels at or above this share of its range (DAX paper: 0.2)")] = 0.2,
    settings: SetOption = None,
    dtype: DtypeOption = "float32",
    memory_budget: MemoryBudgetOption = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="a TOML job file (experiments/configs/): every option above by name, and a [methods.LABEL] "
                         "table per method with its settings; options given on the command line win")] = None,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
):
    """Faithfulness (deletion/insertion), localisation on grids (GridPG, localisation error), intensity and
    speed of METHODS on DATA: summary.csv/.md, curves, index.html."""
    from jaxplain.evaluation.harness import evaluate as run, markdown_table
    from jaxplain.evaluation.job_file import JOB_OPTIONS, evaluation_config, read_job_file
    from jaxplain.memory import plan_methods
    from jaxplain.zoo import load_model

    options = dict(data=data, out=out, model=model, limit=limit, protocol=protocol, seed=seed, batch_size=batch_size,
                   examples=examples, metrics=metrics, target=target, localisation_alpha=localisation_alpha, dtype=dtype,
                   iou_threshold=iou_threshold)
    names, aliases = split_labelled_methods(methods)
    hyperparameters = {name: {} for name in names}
    if config is not None:
        job = read_job_file(config, JOB_OPTIONS)
        given = from_command_line(ctx)
        options |= {k: v for k, v in job["options"].items() if k not in given}
        if "methods" not in given and job["methods"]:
            names, aliases, hyperparameters = job["methods"], job["aliases"], job["settings"]
    for label, changes in parse_settings(settings, names).items():  # --set wins over the file
        hyperparameters[label] |= changes
    if options["data"] is None or options["out"] is None:
        raise UsageError("give --data and --out (or a --config file that names them)")
    out = Path(options["out"])
    if memory_budget is not None:  # planned on the teacher as the explainers run it
        options["batch_size"], hyperparameters = plan_methods(
            teacher_in(options["model"], options["dtype"]), hyperparameters, memory_budget, options["batch_size"],
            aliases=aliases, report=typer.echo)
    evaluation = evaluation_config(options, hyperparameters, aliases)
    rows = run(load_model(options["model"]), evaluation, out, data_dir=tfds_dir, raw_data=raw_data)
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {out / 'summary.csv'} and {out / 'index.html'}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("demo_out"),
    method: Annotated[Optional[str], typer.Option(
        "--method", help="method name(s), comma-separated (default: relabel,gfi,dax,surrogate,gradcam,rise)")] = None,
    seed: int = 0,
    settings: SetOption = None,
):
    """Explain four photos bundled with scikit-image (chelsea, coffee, astronaut, rocket) and one spoken digit."""
    from jaxplain.demo import DEMO_METHODS, run_demo

    methods = split_methods(method) if method else list(DEMO_METHODS)
    records = run_demo(out, methods, seed=seed, hyperparameters=parse_settings(settings, methods))
    for record in records:
        typer.echo(f"{record['file']}: {record['class_name']} ({record['probability']:.1%})")
    typer.echo(f"wrote {out / 'index.html'}")


data_app = typer.Typer(no_args_is_help=True, help="Prepare datasets with tensorflow-datasets.")
app.add_typer(data_app, name="data")


@data_app.command("folder")
def data_folder(
    folder: Annotated[Path, typer.Argument(help="folder with images and labels.tsv")],
    name: Annotated[str, typer.Option(help="config name: read back as tfds:labelled_folder/NAME")],
    tfds_dir: TfdsDirOption = None,
):
    """Prepare a labelled folder as the TFDS dataset labelled_folder/NAME."""
    from jaxplain.data import build_folder_dataset

    typer.echo(f"prepared {build_folder_dataset(folder, name, tfds_dir)}")


@data_app.command("cifar10")
def data_cifar10(tfds_dir: TfdsDirOption = None, raw_data: RawDataOption = None):
    """Prepare tfds:cifar10_jpeg from cifar10-jpeg.tar.gz (no network)."""
    from jaxplain.data import open_source

    for split in ("train", "test"):
        source, _ = open_source(f"tfds:cifar10_jpeg:{split}", data_dir=tfds_dir, raw_data=raw_data)
        typer.echo(f"tfds:cifar10_jpeg:{split}: {len(source)} images")


@data_app.command("spoken-digits")
def data_spoken_digits(
    tfds_dir: TfdsDirOption = None,
    clips: Annotated[Optional[Path], typer.Option(help="also write a few test clips as .wav files here")] = None,
    count: Annotated[int, typer.Option(help="how many clips --clips writes")] = 4,
):
    """Synthesise tfds:spoken_digits with espeak-ng (installed with apt-get when missing and possible)."""
    from jaxplain.audio import write_wav
    from jaxplain.data import open_source
    from jaxplain.data.speech import SAMPLE_RATE, WORDS

    for split in ("train", "test"):
        source, _ = open_source(f"tfds:spoken_digits:{split}", data_dir=tfds_dir)
        typer.echo(f"tfds:spoken_digits:{split}: {len(source)} clips")
    if clips is not None:
        clips.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            record = source[index]
            voice = record["voice"].decode() if isinstance(record["voice"], bytes) else str(record["voice"])
            path = clips / f"{WORDS[int(record['label'])]}_{voice}.wav"
            write_wav(path, record["audio"].astype("float32") / 32768.0, SAMPLE_RATE)
            typer.echo(f"wrote {path}")


@data_app.command("grids")
def data_grids(
    data: DataOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (a labelled folder with a cell column)")],
    model: ModelOption = "efficientnet_lite0",
    count: Annotated[int, typer.Option(help="number of 2x2 grids")] = 64,
    seed: int = 0,
    min_confidence: Annotated[float, typer.Option(help="an image is used when the teacher gives its label this probability")] = 0.5,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
):
    """Build 2x2 localisation grids of confidently classified images of different classes (GridPG)."""
    from jaxplain.data import open_source
    from jaxplain.data.grids import GridSpec, build_grids
    from jaxplain.zoo import load_model

    teacher = load_model(model)
    source, _ = open_source(data, num_classes=teacher.num_classes, data_dir=tfds_dir, raw_data=raw_data)
    folder = build_grids(teacher, source, out, GridSpec(count, seed, min_confidence), command=_command_line())
    summary = (folder / "grids.json").read_text()
    typer.echo(summary.strip())
    typer.echo(f"wrote {count} grids to {folder}; evaluate with --data {folder}")


train_app = typer.Typer(no_args_is_help=True, help="Train teachers and explanation networks (resumable).")
app.add_typer(train_app, name="train")


@train_app.command("cifar10-teacher")
def train_cifar10_teacher(
    out: Annotated[Path, typer.Option(help="artefact folder")] = Path("checkpoints/cifar10_resnet"),
    workdir: Annotated[Path, typer.Option(help="run folder: checkpoints and metrics.jsonl; rerun to resume")] = Path("runs/cifar10_resnet"),
    epochs: int = 50,
    batch_size: int = 512,
    widths: Annotated[str, typer.Option(help="channels of the four stages")] = "64,128,256,256",
    flip_average: Annotated[bool, typer.Option(help="ship a model that averages logits over the mirror image")] = True,
    seed: int = 0,
    limit: Annotated[Optional[int], typer.Option(help="train on the first N images (smoke test)")] = None,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
):
    """Train the CIFAR-10 ResNet teacher (tfds:cifar10_jpeg) and save it as an orbax artefact."""
    from jaxplain.train.cifar_teacher import CifarRecipe, train

    recipe = CifarRecipe(widths=tuple(int(w) for w in widths.split(",")), epochs=epochs, batch_size=batch_size,
                         flip_average=flip_average, seed=seed, limit=limit)
    config = train(recipe, out, workdir, data_dir=tfds_dir, raw_data=raw_data, command=_command_line())
    typer.echo(f"test accuracy {config['test_accuracy']:.2%}; wrote {out}")


@train_app.command("speech-classifier")
def train_speech_classifier(
    out: Annotated[Path, typer.Option(help="artefact folder")] = Path("checkpoints/spoken_digits_cnn"),
    workdir: Annotated[Path, typer.Option(help="run folder: checkpoints and metrics.jsonl; rerun to resume")] = Path("runs/spoken_digits_cnn"),
    epochs: int = 15,
    batch_size: int = 64,
    seed: int = 0,
    limit: Annotated[Optional[int], typer.Option(help="train on the first N clips (smoke test)")] = None,
    tfds_dir: TfdsDirOption = None,
):
    """Train the log-mel audio teacher on tfds:spoken_digits (built with espeak-ng on first use)."""
    from jaxplain.train.speech_classifier import SpeechRecipe, train

    recipe = SpeechRecipe(epochs=epochs, batch_size=batch_size, seed=seed, limit=limit)
    config = train(recipe, out, workdir, data_dir=tfds_dir, command=_command_line())
    typer.echo(f"accuracy on held-out voices {config['test_accuracy']:.2%}; wrote {out}")


@train_app.command("surrogate")
def train_surrogate(
    teacher: Annotated[str, typer.Option(help="the model to explain: cifar10_resnet_small or efficientnet_lite0")],
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="training data (default: the preset's)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="artefact folder (default checkpoints/surrogate_TEACHER)")] = None,
    workdir: Annotated[Optional[Path], typer.Option(help="run folder (default runs/ and the --out folder's name); rerun to resume")] = None,
    features: Annotated[Optional[str], typer.Option(
        help="teacher features the student reads, shallowest first, comma-separated (attention on the frozen "
             "teacher); 'none' for the paper's student trained from scratch (default: the preset's)")] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    bf16: Annotated[Optional[bool], typer.Option("--bf16/--float32", help="the surrogate's dtype (default: the preset's)")] = None,
    l1: Annotated[Optional[float], typer.Option(help="lambda of the L1 term on the map, per 224 x 224 pixels (default: the paper's 1e-5)")] = None,
    deletion: Annotated[Optional[float], typer.Option(
        help="weight of a deletion term, the teacher's probability of its class on what the map removes "
             "(not the paper's; default 0)")] = None,
    width: Annotated[Optional[int], typer.Option(
        help="channels of the explanation network's shallowest convolution (twice and four times that for the "
             "deeper two); for the paper's student also its first stage's (default: the preset's)")] = None,
    limit: Annotated[Optional[int], typer.Option(help="training images (smoke test)")] = None,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
):
    """Train the attentive surrogate explainer of TEACHER (student + explanation network, seed 004)."""
    from jaxplain.train import surrogate_trainer

    presets = {"cifar10_resnet_small": "cifar10", "cifar10_resnet": "cifar10", "efficientnet_lite0": "imagenet"}
    if teacher not in presets:
        raise UsageError(f"no surrogate recipe for {teacher!r}; choose one of: {', '.join(presets)}")
    changes = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "limit": limit, "data": data,
                                 "bf16": bf16, "l1": l1, "deletion": deletion, "width": width}.items() if v is not None}
    if features is not None:
        changes["features"] = () if features == "none" else tuple(f.strip() for f in features.split(",") if f.strip())
        if features != "none" and not changes["features"]:
            raise UsageError("--features names no feature; give feature names, or 'none' for the paper's student")
    recipe = surrogate_trainer.preset(presets[teacher], raw_data, teacher=teacher, **changes)
    out = out or Path(f"checkpoints/surrogate_{teacher}")
    config = surrogate_trainer.train(recipe, out, workdir or Path("runs") / out.name, data_dir=tfds_dir,
                                     raw_data=raw_data, command=_command_line())
    typer.echo(f"student top-1 {config['student_top1']:.2%} (teacher {config['teacher_top1']:.2%}), agreement with "
               f"the teacher {config['agreement']:.2%} on {config['holdout_images']} held-out images; wrote {out}")


@train_app.command("vae")
def train_vae(
    preset: Annotated[str, typer.Argument(help="cifar10 (32 px, for cifar10_resnet) or imagenet64 (for efficientnet_lite0)")],
    out: Annotated[Optional[Path], typer.Option(help="artefact folder (default checkpoints/vae_PRESET)")] = None,
    workdir: Annotated[Optional[Path], typer.Option(help="run folder (default runs/vae_PRESET); rerun to resume")] = None,
    epochs: Optional[int] = None,
    limit: Annotated[Optional[int], typer.Option(help="images per source (smoke test)")] = None,
    tfds_dir: TfdsDirOption = None,
    raw_data: RawDataOption = None,
):
    """Train a VAE for re-label distillation and report its reconstructions."""
    from jaxplain.train import vae_trainer

    if preset not in vae_trainer.PRESETS:
        raise UsageError(f"unknown VAE preset {preset!r}; choose one of: {', '.join(vae_trainer.PRESETS)}")
    changes = {k: v for k, v in {"epochs": epochs, "limit": limit}.items() if v is not None}
    recipe = vae_trainer.preset(preset, raw_data, **changes)
    out = out or Path(f"checkpoints/vae_{preset}")
    config = vae_trainer.train(recipe, out, workdir or Path(f"runs/vae_{preset}"), data_dir=tfds_dir,
                               raw_data=raw_data, command=_command_line())
    typer.echo(f"reconstruction MSE {config['reconstruction_mse']:.4f}, teacher keeps its prediction on "
               f"{config['teacher_keeps_prediction']:.1%} of held-out reconstructions; wrote {out}")


@app.command()
def models():
    """List the teachers in the model zoo."""
    from jaxplain.zoo import MODELS

    for name in MODELS:
        typer.echo(name)


@app.command()
def methods(
    name: Annotated[Optional[str], typer.Argument(help="a method (NAME or NAME:PRESET) to show in full")] = None,
):
    """List the explanation methods with their presets; with NAME[:PRESET], every setting of that preset with its
    value, what it does, and where the preset's values come from."""
    from jaxplain.explainers import METHODS, configure

    if name is None:
        for method in METHODS.values():
            typer.echo(f"{method.name:22s} {method.summary}")
            typer.echo(f"{'':22s} presets: {', '.join(method.presets)}  (jaxplain methods {method.name}:PRESET)")
        return
    found, preset_name, settings = configure(name)
    preset = found.preset(preset_name)
    default = found.preset("default").settings
    typer.echo(f"{found.name}:{preset_name}: {found.summary}")
    typer.echo(f"source: {preset.source}")
    for differs in preset.differs:
        typer.echo(f"differs: {differs}")
    width = max(len(n) for n, _, _ in settings.describe()) if settings.describe() else 0
    for setting_name, _, help_text in settings.describe():
        value = getattr(settings, setting_name)
        changed = "" if preset_name == "default" or value == getattr(default, setting_name) else "  (default: " \
            f"{getattr(default, setting_name)!r})"
        typer.echo(f"  {setting_name:{width}s} = {value!r}{changed}")
        typer.echo(f"  {'':{width}s}   {help_text}")
        if setting_name in preset.open:
            typer.echo(f"  {'':{width}s}   open in the source: {preset.open[setting_name]}")


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; user errors print one line on stderr and exit with status 2; an interrupt (SIGINT, SIGTERM)
    prints what is saved and exits with 128 + the signal's number."""
    try:
        with interruptible(lambda: "nothing was saved yet"):
            app(args=argv, standalone_mode=False)
    except Interrupted as e:
        print(f"{e}", file=sys.stderr)
        return 128 + e.signal_number
    except JaxplainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted before any work was saved", file=sys.stderr)
        return 130
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # usage errors of the underlying click parser
            e.show()
            return e.exit_code
        return report_internal_error(e)
    return 0


def report_internal_error(error: Exception) -> int:
    """An unexpected failure (a bug, or a resource the machine lacks): one line, the traceback saved to a file."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="jaxplain-error-", suffix=".txt", delete=False) as f:
        traceback.print_exception(error, file=f)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    print(f"internal error: {type(error).__name__}: {first[:300]} (full traceback in {f.name}; please report it)",
          file=sys.stderr)
    return 1


def run() -> None:
    """The console script: exits without running Python's finalisers (which can crash while XLA's threads are
    still busy after an interrupt), once every output is closed and flushed."""
    import os

    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
