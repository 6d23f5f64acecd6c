#!/usr/bin/env bash
# Reproduces the shipped artefacts in checkpoints/ and the figures in results/, stage by stage:
#
#   JAXPLAIN_DATA=../shared/data experiments/reproduce.sh cifar-teacher vae-cifar10 vae-imagenet64 speech-classifier \
#       surrogate-cifar10 surrogate-imagenet surrogate-distilled accuracy leaderboard bench-imagenet bench-cifar race \
#       bench-job memory metrics-race rise-parity dax-parity
#
# JAXPLAIN_DATA is the folder holding cifar10-jpeg.tar.gz and imagenet-dev/. Training stages resume from their last
# checkpoint in runs/, evaluations from their records, when run again. The development studies behind each default
# are in docs/studies/ with their commands (their job files are in git history, experiments/configs/).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${JAXPLAIN_DATA:?set JAXPLAIN_DATA to the folder with cifar10-jpeg.tar.gz and imagenet-dev/}"
export TFDS_DATA_DIR="${TFDS_DATA_DIR:-$PWD/runs/tfds}"
JAXPLAIN="${JAXPLAIN:-jaxplain}"
PYTHON="${PYTHON:-python}"
# the splits of imagenet-dev, written to runs/: development (even rows), held-out (odd rows), test (the odd rows
# less the first 8, on which relabel's earliest defaults were chosen)
split_rows() { $PYTHON experiments/split_labels.py "$JAXPLAIN_DATA/imagenet-dev" "$@"; }
dev_split() { split_rows even runs/imagenet-dev-dev.tsv; }
heldout_split() { split_rows odd runs/imagenet-dev-heldout.tsv; }
# a training run's artefact (its config.json and variables) copied into checkpoints/ to be shipped
ship_copy() { rm -rf "$2" && mkdir -p "$2" && cp -r "$1/config.json" "$1/variables" "$2/"; }

for stage in "$@"; do
  echo "=== $stage ($(date -u +%H:%M:%S))"
  case "$stage" in
    cifar-teacher)
      # the zoo's cifar10_resnet (flip-averaged) and the single-pass model the CIFAR tables use
      $JAXPLAIN train cifar10-teacher --out checkpoints/cifar10_resnet --workdir runs/cifar10_w64
      $JAXPLAIN train cifar10-teacher --out checkpoints/cifar10_resnet_small --workdir runs/cifar10_resnet \
        --widths 48,96,192,256 --epochs 70 --no-flip-average ;;
    vae-cifar10) $JAXPLAIN train vae cifar10 ;;
    vae-imagenet64) $JAXPLAIN train vae imagenet64 ;;
    speech-classifier) $JAXPLAIN train speech-classifier ;;   # synthesises tfds:spoken_digits with espeak-ng first
    surrogate-cifar10)
      # the default: attention modules on the frozen teacher's features (about 17 min on a 2-core CPU)
      $JAXPLAIN train surrogate --teacher cifar10_resnet_small
      # the paper preset's student, trained from scratch (about 65 min on a 2-core CPU)
      $JAXPLAIN train surrogate --teacher cifar10_resnet_small --features none --epochs 4 --bf16 \
        --out checkpoints/surrogate_cifar10_resnet_small_scratch ;;
    surrogate-imagenet)
      $JAXPLAIN train surrogate --teacher efficientnet_lite0
      $JAXPLAIN train surrogate --teacher efficientnet_lite0 --features none --batch-size 64 --bf16 \
        --out checkpoints/surrogate_efficientnet_lite0_scratch ;;
    surrogate-distilled)
      # student="distilled": the default surrogates fine-tuned on their own maps refined per image
      dev_split
      $PYTHON experiments/distil_refined_maps.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:train \
        --images 4096 --out runs/surrogate_cifar10_distilled_k10
      $PYTHON experiments/distil_refined_maps.py --model efficientnet_lite0 --data runs/imagenet-dev-dev.tsv \
        --images 250 --chunk 16 --batch-size 32 --epochs 10 --out runs/surrogate_imagenet_distilled_k10
      ship_copy runs/surrogate_cifar10_distilled_k10 checkpoints/surrogate_cifar10_resnet_small_distilled
      ship_copy runs/surrogate_imagenet_distilled_k10 checkpoints/surrogate_efficientnet_lite0_distilled ;;
    accuracy)
      $JAXPLAIN accuracy --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev"
      $JAXPLAIN accuracy --model cifar10_resnet --data tfds:cifar10_jpeg:test
      $JAXPLAIN accuracy --model cifar10_resnet_small --data tfds:cifar10_jpeg:test ;;
    leaderboard)
      # every table of results/README.md: the runs of experiments/leaderboard/*.toml, then the tables
      $PYTHON experiments/leaderboard.py run
      $PYTHON experiments/leaderboard.py write ;;
    bench-imagenet)
      $PYTHON experiments/benchmark.py --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev" --batch 16 ;;
    bench-cifar)
      $PYTHON experiments/benchmark.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:test --batch 64 \
        --teacher-batch 1024 ;;
    race)
      # jaxplain against pytorch-grad-cam, captum and batched PyTorch RISE on this machine ('reference' extra)
      (cd experiments && $PYTHON race.py --images 4 --repeats 3 --out ../results/race.csv) ;;
    bench-job)
      heldout_split
      $PYTHON experiments/job_benchmark.py --data runs/imagenet-dev-heldout.tsv --limit 64 --batch 16 \
        --methods gradcam,rise --settings '{"rise": {"num_masks": 1000}}' ;;
    memory)
      # peak memory per method against batch size and chunk: XLA's estimate and the measured peak
      $PYTHON experiments/memory_table.py --batches 1,16 ;;
    metrics-race)
      # metric evaluations per second against Quantus 0.6 on this CPU ('reference' extra)
      $PYTHON experiments/metrics_race.py --images 4 --out results/metrics_race.csv ;;
    rise-parity)
      # deletion/insertion against the RISE authors' CausalMetric (a port in tests/), exact protocol
      $PYTHON -m pytest -q tests/test_rise_metric_parity.py ;;
    dax-parity)
      # DAX against the authors' code: give a checkout of iiscleap/DAX (never copied into this repository)
      : "${DAX_CHECKOUT:?set DAX_CHECKOUT to a checkout of iiscleap/DAX}"
      $PYTHON experiments/dax_reference_parity.py "$DAX_CHECKOUT" --images 6 --out results/studies/dax_reference_parity.csv ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
