#!/usr/bin/env bash
# Reproduces the trained artefacts in checkpoints/ and the tables in results/README.md, stage by stage:
#
#   JAXPLAIN_DATA=../shared/data experiments/reproduce.sh cifar-teacher vae-cifar10 vae-imagenet64 \
#       accuracy eval-imagenet eval-cifar bench-imagenet bench-cifar
#
# JAXPLAIN_DATA is the folder holding cifar10-jpeg.tar.gz and imagenet-dev/. Training stages resume
# from their last checkpoint in runs/ and evaluations from their records when run again.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${JAXPLAIN_DATA:?set JAXPLAIN_DATA to the folder with cifar10-jpeg.tar.gz and imagenet-dev/}"
export TFDS_DATA_DIR="${TFDS_DATA_DIR:-$PWD/runs/tfds}"
JAXPLAIN="${JAXPLAIN:-jaxplain}"
PYTHON="${PYTHON:-python}"
METHODS=relabel,gradcam,scorecam,rise,lime,occlusion,extremal,gradient,integrated_gradients,smoothgrad,random,centre
# re-label distillation with the paper's raw student weights as the map, on a finer student
ABLATIONS=relabel_weights=relabel
ABLATION_SETTINGS="--set relabel_weights.attribution=magnitude --set relabel_weights.student_resolution=32"

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
    accuracy)
      $JAXPLAIN accuracy --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev"
      $JAXPLAIN accuracy --model cifar10_resnet --data tfds:cifar10_jpeg:test
      $JAXPLAIN accuracy --model cifar10_resnet_small --data tfds:cifar10_jpeg:test ;;
    eval-imagenet)
      # the odd rows of imagenet-dev: the half the ImageNet VAE never saw
      $PYTHON experiments/split_labels.py "$JAXPLAIN_DATA/imagenet-dev" odd runs/imagenet-dev-heldout.tsv
      $JAXPLAIN evaluate --model efficientnet_lite0 --methods $METHODS,$ABLATIONS --data runs/imagenet-dev-heldout.tsv \
        --out results/imagenet_dev_heldout --batch-size 16 --examples 6 --limit "${IMAGENET_LIMIT:-250}" $ABLATION_SETTINGS ;;
    eval-cifar)
      $JAXPLAIN evaluate --model cifar10_resnet_small --methods $METHODS,$ABLATIONS,relabel_decoded=relabel \
        --data tfds:cifar10_jpeg:test --limit 500 --out results/cifar10_test --batch-size 50 --examples 6 \
        $ABLATION_SETTINGS --set relabel_decoded.neighbourhood=decoded ;;
    bench-imagenet)
      $PYTHON experiments/benchmark.py --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev" --batch 16 ;;
    bench-cifar)
      $PYTHON experiments/benchmark.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:test --batch 64 --teacher-batch 1024 ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
