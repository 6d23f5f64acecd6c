#!/usr/bin/env bash
# Reproduces the trained artefacts in checkpoints/ and the tables in results/README.md, stage by stage:
#
#   JAXPLAIN_DATA=../shared/data experiments/reproduce.sh cifar-teacher vae-cifar10 vae-imagenet64 \
#       speech-classifier surrogate-cifar10 surrogate-imagenet surrogate-eval surrogate-distilled accuracy eval-imagenet eval-cifar \
#       gfi-dev grids-imagenet grids-imagenet-cpu grids-imagenet-more grids-cifar10 grids-cifar10-more grids-cifar10-dax dax-cifar10 dax-cifar10-dev dax-imagenet-dev dax-imagenet-test audio-clips eval-audio bench-imagenet bench-cifar bench-surrogate relabel-dev-study relabel-test relabel-exact relabel-exact-soft relabel-exact-4000 relabel-exact-size relabel-cifar-dev relabel-cifar \
#       race bench-job memory dtype
#
# JAXPLAIN_DATA is the folder holding cifar10-jpeg.tar.gz and imagenet-dev/. Training stages resume
# from their last checkpoint in runs/ and evaluations from their records when run again.
set -euo pipefail
DTYPE_METHODS=gradcam,gradient,smoothgrad,occlusion
cd "$(dirname "$0")/.."
: "${JAXPLAIN_DATA:?set JAXPLAIN_DATA to the folder with cifar10-jpeg.tar.gz and imagenet-dev/}"
export TFDS_DATA_DIR="${TFDS_DATA_DIR:-$PWD/runs/tfds}"
JAXPLAIN="${JAXPLAIN:-jaxplain}"
PYTHON="${PYTHON:-python}"
# the three splits of imagenet-dev, written to runs/: development (even rows), held-out (odd rows) and
# test (the odd rows less the first 8, on which relabel's earliest defaults were chosen)
split_rows() { $PYTHON experiments/split_labels.py "$JAXPLAIN_DATA/imagenet-dev" "$@"; }
dev_split() { split_rows even runs/imagenet-dev-dev.tsv; }
heldout_split() { split_rows odd runs/imagenet-dev-heldout.tsv; }
test_split() { split_rows odd runs/imagenet-dev-test.tsv --skip 8; }
# the surrogate's development rows: odd rows after the first 136, which no reported table uses
surrogate_dev_split() { split_rows odd runs/imagenet-dev-surrogate-dev.tsv --skip 136; }
# a training run's artefact (its config.json and variables) copied into checkpoints/ to be shipped
ship_copy() { rm -rf "$2" && mkdir -p "$2" && cp -r "$1/config.json" "$1/variables" "$2/"; }
# the large evaluations are job files in experiments/configs/ (jaxplain evaluate --config FILE)
# re-label distillation ablations: the map as weight x (pixel - mean colour) instead of the raw weight
# magnitudes, and that map from a student fitted with Adam instead of momentum gradient descent
ABLATIONS=relabel_input=relabel,relabel_adam=relabel
ABLATION_SETTINGS="--set relabel_input.attribution=input --set relabel_adam.student_optimiser=adam --set relabel_adam.attribution=input"
# (all three in the residual neighbourhood, relabel's default when those runs were made)
ABLATION_SETTINGS="$ABLATION_SETTINGS --set relabel.neighbourhood=residual --set relabel_input.neighbourhood=residual --set relabel_adam.neighbourhood=residual"

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
    speech-classifier)
      # synthesises tfds:spoken_digits with espeak-ng on first use, then trains the audio teacher
      $JAXPLAIN train speech-classifier ;;
    surrogate-cifar10)
      # today's preset: attention modules on the frozen teacher's features, 2 epochs (about 17 min on a 2-core CPU)
      $JAXPLAIN train surrogate --teacher cifar10_resnet_small
      # the paper's student from scratch, 4 epochs (1560 steps, about 65 min on a 2-core CPU)
      $JAXPLAIN train surrogate --teacher cifar10_resnet_small --features none --epochs 4 --bf16 \
        --out checkpoints/surrogate_cifar10_resnet_small_scratch
      # the fast student (stop 35): the teacher read up to layer2, explanation network of width 8, chosen on
      # development images (cifar10_surrogate_dev_fast.toml); shipped as the development run's copy
      $JAXPLAIN train surrogate --teacher cifar10_resnet_small --features prep,layer1,layer2 --width 8 \
        --out runs/surrogate_cifar10_layer2_w8
      ship_copy runs/surrogate_cifar10_layer2_w8 checkpoints/surrogate_cifar10_resnet_small_fast ;;
    surrogate-imagenet)
      # today's preset: attention modules on the frozen teacher's features (about 25 min on a 2-core CPU)
      $JAXPLAIN train surrogate --teacher efficientnet_lite0
      # the paper's student trained from scratch on the same 254 images (the preset until stop 32)
      $JAXPLAIN train surrogate --teacher efficientnet_lite0 --features none --batch-size 64 --bf16 \
        --out checkpoints/surrogate_efficientnet_lite0_scratch
      # the fast student's design carried over untuned: the teacher read up to stage5, width 8
      $JAXPLAIN train surrogate --teacher efficientnet_lite0 --features stage3,stage4,stage5 --width 8 \
        --out runs/surrogate_efficientnet_lite0_stage5_w8
      ship_copy runs/surrogate_efficientnet_lite0_stage5_w8 checkpoints/surrogate_efficientnet_lite0_fast ;;
    surrogate-eval)
      # both surrogates on test images, paired with relabel, Grad-CAM and RISE on the same images
      test_split
      $JAXPLAIN evaluate --config experiments/configs/surrogate_test.toml
      $PYTHON experiments/paired.py results/surrogate_test results/relabel_test results/relabel_test_rise \
        results/relabel_test_spliced --against surrogate
      $JAXPLAIN evaluate --config experiments/configs/surrogate_features_test.toml
      $PYTHON experiments/paired.py results/surrogate_features_test results/surrogate_test results/relabel_test_size \
        results/relabel_test_rise results/relabel_test_baselines --against surrogate_features --limit 64
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_test.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_test results/cifar10_relabel_defaults \
        results/cifar10_relabel_change --against surrogate --limit 100
      # the CIFAR-10 student chosen on development images, then reported on the test images
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_dev.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_dev --against surrogate
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_features_test.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_features_test results/cifar10_surrogate_test \
        results/cifar10_relabel_defaults results/cifar10_relabel_change --against surrogate_features --limit 100
      # the fast students: chosen on CIFAR-10 development images, then both on the test images
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_dev_fast.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_dev_fast --against surrogate
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_fast_test.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_fast_test results/cifar10_surrogate_features_test \
        results/cifar10_surrogate_test results/cifar10_relabel_defaults results/cifar10_relabel_change \
        --against surrogate_fast --limit 100
      $JAXPLAIN evaluate --config experiments/configs/surrogate_fast_test.toml
      $PYTHON experiments/paired.py results/surrogate_fast_test results/surrogate_features_test results/surrogate_test \
        results/relabel_test_size results/relabel_test_rise results/relabel_test_baselines --against surrogate_fast --limit 64
      # per-image refinement (refine_steps): chosen on development images, then reported on the test images
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_dev_refine.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_dev_refine --against surrogate
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_dev_refine_settings.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_dev_refine_settings results/cifar10_surrogate_dev_refine \
        --against surrogate_refine_10
      surrogate_dev_split
      $JAXPLAIN evaluate --config experiments/configs/surrogate_dev_refine.toml
      $PYTHON experiments/paired.py results/surrogate_dev_refine --against surrogate
      $PYTHON experiments/refine_start.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \
        --limit 64 --out results/cifar10_surrogate_dev_refine_start
      $PYTHON experiments/paired.py results/cifar10_surrogate_dev_refine_start --against from_constant
      $PYTHON experiments/refine_start.py --model efficientnet_lite0 --data runs/imagenet-dev-surrogate-dev.tsv \
        --limit 64 --out results/surrogate_dev_refine_start
      $PYTHON experiments/paired.py results/surrogate_dev_refine_start --against from_constant
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_refine_test.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_refine_test results/cifar10_surrogate_features_test \
        results/cifar10_relabel_defaults results/cifar10_relabel_change --against surrogate_refine_10 --limit 100
      $JAXPLAIN evaluate --config experiments/configs/surrogate_refine_test.toml
      $PYTHON experiments/paired.py results/surrogate_refine_test results/surrogate_features_test \
        results/relabel_test_size results/relabel_test_rise results/relabel_test_baselines \
        --against surrogate_refine_10 --limit 64 ;;
    relabel-exact)
      # the exact deletion/insertion protocol on the first 16 test-split images
      test_split
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_exact.toml
      $PYTHON experiments/paired.py results/relabel_test_exact --against relabel ;;
    relabel-exact-soft)
      # the same 16 images with relabel at today's defaults (the soft-label student)
      test_split
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_exact_soft.toml
      $PYTHON experiments/paired.py results/relabel_test_exact_soft results/relabel_test_exact --against relabel_soft ;;
    relabel-exact-4000)
      # the same 16 images with relabel's 4000 samples (today's default)
      test_split
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_exact_4000.toml
      $PYTHON experiments/paired.py results/relabel_test_exact_4000 results/relabel_test_exact --against relabel_4000 ;;
    relabel-exact-size)
      # the exact protocol on 16 test images for today's map (signed change map, size input)
      test_split
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_exact_size.toml
      $PYTHON experiments/paired.py results/relabel_test_exact_size results/relabel_test_exact --against relabel_size ;;
    gfi-dev)
      # GFI's layer and settings, chosen on development grids (even rows of imagenet-dev) only
      dev_split
      $JAXPLAIN data grids --data runs/imagenet-dev-dev.tsv --out runs/grids-dev --count 64 --seed 0
      $JAXPLAIN evaluate --model efficientnet_lite0 --methods gfi,gfi_stage6=gfi,gfi_stage5=gfi,gradcam \
        --set gfi_stage6.layer=stage6 --set gfi_stage5.layer=stage5 --set gfi.class_score=probability \
        --set gfi_stage6.class_score=probability --set gfi_stage5.class_score=probability \
        --set gfi.channel_weights=non_negative --set gfi.mask_normalisation=min_max --set gfi_stage6.channel_weights=non_negative --set gfi_stage6.mask_normalisation=min_max \
        --set gfi_stage5.channel_weights=non_negative --set gfi_stage5.mask_normalisation=min_max --data runs/grids-dev \
        --limit 64 --metrics gridpg,localisation --batch-size 16 --out runs/gfi-dev-layers
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_tuning.toml
      # the class stage's score (stop 26: log-probability became the default), then its penalty and length
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_class_score.toml
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_log_settings.toml
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_log_layer.toml
      # signed channel weights (free to subtract a channel) against the paper's non-negative ones
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_signed.toml
      # a much stronger class-stage penalty (sparser channel mix), and no inversion stage
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_sparser.toml
      # the background (noise, a wider blur) and a weaker or no removal term (stopped at 32 cells)
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_background.toml --limit 32
      # the paper's L1 weight penalties instead of the reference code's squared L2
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_l1.toml
      $PYTHON experiments/paired.py results/gfi_dev_class_score --metric gridpg --against gfi
      $PYTHON experiments/paired.py results/gfi_dev_log_settings results/gfi_dev_log_layer results/gfi_dev_signed results/gfi_dev_sparser results/gfi_dev_class_score \
        --metric gridpg --against gfi_log
      $PYTHON experiments/paired.py results/gfi_dev_background results/gfi_dev_l1 results/gfi_dev_class_score --metric gridpg \
        --against gfi_log --limit 32
      # the reference code's mask normalisation, (m - min) / max; rectified signed weights (the default since)
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_normalisation.toml
      $JAXPLAIN evaluate --config experiments/configs/gfi_dev_rectified.toml
      $PYTHON experiments/paired.py results/gfi_dev_rectified results/gfi_dev_normalisation results/gfi_dev_class_score \
        --metric gridpg --against gfi_log --limit 64 ;;
    grids-imagenet)
      # localisation grids from the held-out odd rows; GridPG and localisation error of every method
      heldout_split
      $JAXPLAIN data grids --data runs/imagenet-dev-heldout.tsv --out runs/grids-test --count 64 --seed 1
      $JAXPLAIN evaluate --model efficientnet_lite0 --data runs/grids-test --limit 256 \
        --methods gfi,gradcam,gradient,integrated_gradients,smoothgrad,occlusion,random,centre \
        --set gfi.class_score=probability --set gfi.channel_weights=non_negative --set gfi.mask_normalisation=min_max \
        --metrics gridpg,localisation --batch-size 16 --out results/imagenet_grids_test
      # GFI with the log-probability class stage (the default from stop 26), paired on the same cells
      $JAXPLAIN evaluate --config experiments/configs/imagenet_grids_gfi_log.toml
      $PYTHON experiments/paired.py results/imagenet_grids_gfi_log results/imagenet_grids_test --metric gridpg \
        --against gfi_log
      # GFI at today's defaults (rectified signed channel weights), paired on the same cells
      $JAXPLAIN evaluate --config experiments/configs/imagenet_grids_gfi_rectified.toml
      $PYTHON experiments/paired.py results/imagenet_grids_gfi_rectified results/imagenet_grids_gfi_log \
        results/imagenet_grids_test results/imagenet_grids_cpu --metric gridpg --against gfi_rectified ;;
    grids-imagenet-cpu)
      # LIME and Score-CAM on the held-out grids, beside Grad-CAM and the references (sized for a CPU)
      $JAXPLAIN evaluate --config experiments/configs/imagenet_grids_cpu.toml
      $PYTHON experiments/paired.py results/imagenet_grids_cpu results/imagenet_grids_gfi_log --metric gridpg --against gfi_log ;;
    grids-imagenet-more)
      # RISE, extremal perturbation, relabel and DAX on the same grids (sized for a GPU), paired by cell with
      # the methods of grids-imagenet-cpu and GFI
      $JAXPLAIN evaluate --config experiments/configs/imagenet_grids_more.toml
      $JAXPLAIN evaluate --config experiments/configs/imagenet_grids_relabel.toml
      $JAXPLAIN evaluate --config experiments/configs/imagenet_grids_dax.toml
      $PYTHON experiments/paired.py results/imagenet_grids_more results/imagenet_grids_relabel results/imagenet_grids_dax \
        results/imagenet_grids_cpu results/imagenet_grids_gfi_log --metric gridpg --against gradcam ;;
    grids-cifar10)
      # localisation grids from CIFAR-10 test images (32 px grids of four 16 px cells); no choice was made on them
      $JAXPLAIN data grids --model cifar10_resnet_small --data tfds:cifar10_jpeg:test --out runs/grids-cifar10 \
        --count 64 --seed 1
      $JAXPLAIN evaluate --model cifar10_resnet_small --data runs/grids-cifar10 --limit 256 \
        --methods gfi,gradcam,gradient,integrated_gradients,smoothgrad,occlusion,random,centre \
        --set gfi.class_score=probability --set gfi.channel_weights=non_negative --set gfi.mask_normalisation=min_max \
        --batch-size 64 --examples 4 --out results/cifar10_grids_test
      $JAXPLAIN evaluate --config experiments/configs/cifar10_grids_gfi_log.toml
      $PYTHON experiments/paired.py results/cifar10_grids_gfi_log results/cifar10_grids_test --metric gridpg \
        --against gfi_log
      $JAXPLAIN evaluate --config experiments/configs/cifar10_grids_gfi_rectified.toml
      $PYTHON experiments/paired.py results/cifar10_grids_gfi_rectified results/cifar10_grids_gfi_log \
        results/cifar10_grids_test results/cifar10_grids_more --metric gridpg --against gfi_rectified ;;
    grids-cifar10-more)
      # the same grids for RISE, LIME, Score-CAM, extremal perturbation and re-label distillation
      $JAXPLAIN evaluate --config experiments/configs/cifar10_grids_more.toml
      $PYTHON experiments/paired.py results/cifar10_grids_more results/cifar10_grids_test --metric gridpg \
        --against relabel ;;
    dax-cifar10)
      # DAX on CIFAR-10 test, paired with RISE, Grad-CAM, relabel and random on the same images; and the
      # record of the reference's quickshift at 32 px (one segment per image)
      $JAXPLAIN evaluate --config experiments/configs/cifar10_dax_test.toml
      $JAXPLAIN evaluate --config experiments/configs/cifar10_dax_quickshift.toml
      $PYTHON experiments/paired.py results/cifar10_dax_test results/cifar10_dax_quickshift \
        results/cifar10_relabel_samples2000 results/cifar10_relabel_defaults --against dax --limit 100
      $PYTHON experiments/paired.py results/cifar10_dax_quickshift results/cifar10_relabel_defaults --against dax_quickshift --limit 48 ;;
    dax-cifar10-dev)
      # DAX's training and objective on CIFAR-10 development images (the second half of the test split)
      for job in cifar10_dax_dev_pool cifar10_dax_dev_training cifar10_dax_dev_objective cifar10_dax_dev_colour \
          cifar10_dax_dev_fill cifar10_dax_dev_adversarial cifar10_dax_dev_hard; do
        $JAXPLAIN evaluate --config "experiments/configs/$job.toml"
      done
      $PYTHON experiments/paired.py results/cifar10_dax_dev_training results/cifar10_dax_dev_objective \
        results/cifar10_dax_dev_colour results/cifar10_dax_dev_fill results/cifar10_dax_dev_adversarial \
        results/cifar10_dax_dev_hard --against dax
      $PYTHON experiments/dax_mask_use.py --limit 8 --setting masked_fill=zero --setting complement=adversarial \
        --setting masked_fill=segment_mean --out results/cifar10_dax_mask_use ;;
    dax-imagenet-dev)
      # DAX at the reference's scale (quickshift, 128 px networks) on ImageNet development images, trained and not
      dev_split
      $JAXPLAIN evaluate --config experiments/configs/imagenet_dax_dev.toml
      $PYTHON experiments/paired.py results/imagenet_dax_dev --against dax
      # a DAX map explained in a batch vs alone (the demo photos and settings)
      $PYTHON experiments/dax_batch_stability.py --out runs/dax_batch_stability --images-per-step 4
      $PYTHON experiments/dax_batch_stability.py --out runs/dax_batch_stability ;;
    dax-imagenet-test)
      # DAX at its defaults on the test split, paired with the other methods' runs on the same images
      test_split
      $JAXPLAIN evaluate --config experiments/configs/imagenet_dax_test.toml
      $PYTHON experiments/paired.py results/imagenet_dax_test results/relabel_test results/relabel_test_rise \
        results/relabel_test_samples4000 --against dax ;;
    grids-cifar10-dax)
      $JAXPLAIN evaluate --config experiments/configs/cifar10_grids_dax.toml
      $PYTHON experiments/paired.py results/cifar10_grids_dax results/cifar10_grids_more results/cifar10_grids_iou \
        --metric iou --against dax ;;
    audio-clips)
      $JAXPLAIN explain jaxplain/assets/clips/*.wav --model spoken_digits_cnn --method dax,occlusion,gradcam,rise \
        --set rise.grid=8 --set dax.images_per_step=4 --out runs/audio_clips
      $PYTHON experiments/audio_word_focus.py runs/audio_clips ;;
    eval-audio)
      $JAXPLAIN evaluate --model spoken_digits_cnn --data tfds:spoken_digits:test --limit 40 \
        --methods dax,occlusion,rise,gradcam,gradient,random --set dax.num_samples=1000 --batch-size 8 \
        --examples 4 --out results/spoken_digits_test ;;
    accuracy)
      $JAXPLAIN accuracy --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev"
      $JAXPLAIN accuracy --model cifar10_resnet --data tfds:cifar10_jpeg:test
      $JAXPLAIN accuracy --model cifar10_resnet_small --data tfds:cifar10_jpeg:test ;;
    eval-imagenet)
      # the odd rows of imagenet-dev: the half the ImageNet VAE never saw
      heldout_split
      $JAXPLAIN evaluate --config experiments/configs/imagenet_heldout.toml --batch-size "${IMAGENET_BATCH:-16}" \
        --limit "${IMAGENET_LIMIT:-250}" ;;
    eval-cifar)
      # run (on an H100) with relabel's earlier defaults (Adam student, input attribution); the comparison
      # with today's default follows
      $JAXPLAIN evaluate --config experiments/configs/cifar10_test.toml
      $JAXPLAIN evaluate --model cifar10_resnet_small --methods relabel,relabel_input=relabel,relabel_adam=relabel,random \
        $ABLATION_SETTINGS --data tfds:cifar10_jpeg:test --limit 24 --batch-size 24 --out results/cifar10_relabel_student ;;
    bench-imagenet)
      $PYTHON experiments/benchmark.py --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev" --batch 16 ;;
    bench-cifar)
      $PYTHON experiments/benchmark.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:test --batch 64 --teacher-batch 1024 ;;
    surrogate-distilled)
      # the presets fine-tuned on their own refined maps (checkpoints/surrogate_*_distilled), chosen on development
      # images, reported on the test images
      dev_split
      $PYTHON experiments/distil_refined_maps.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:train \
        --images 4096 --out runs/surrogate_cifar10_distilled_k10
      $PYTHON experiments/distil_refined_maps.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:train \
        --images 4096 --epochs 30 --learning-rate 3e-3 --work runs/surrogate_cifar10_distilled_k10-targets \
        --out runs/surrogate_cifar10_distilled_k10_e30
      $PYTHON experiments/distil_refined_maps.py --model efficientnet_lite0 --data runs/imagenet-dev-dev.tsv \
        --images 250 --chunk 16 --batch-size 32 --epochs 10 --out runs/surrogate_imagenet_distilled_k10
      $PYTHON experiments/distil_refined_maps.py --model efficientnet_lite0 --data runs/imagenet-dev-dev.tsv \
        --images 250 --views 4 --chunk 16 --batch-size 32 --epochs 10 --out runs/surrogate_imagenet_distilled_k10_views4
      ship_copy runs/surrogate_cifar10_distilled_k10 checkpoints/surrogate_cifar10_resnet_small_distilled
      ship_copy runs/surrogate_imagenet_distilled_k10 checkpoints/surrogate_efficientnet_lite0_distilled
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_dev_distilled.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_dev_distilled results/cifar10_surrogate_dev_refine \
        --against surrogate_distilled
      surrogate_dev_split
      $JAXPLAIN evaluate --config experiments/configs/surrogate_dev_distilled.toml
      $PYTHON experiments/paired.py results/surrogate_dev_distilled results/surrogate_dev_refine --against surrogate_distilled
      test_split
      $JAXPLAIN evaluate --config experiments/configs/cifar10_surrogate_distilled_test.toml
      $PYTHON experiments/paired.py results/cifar10_surrogate_distilled_test results/cifar10_surrogate_refine_test \
        results/cifar10_surrogate_features_test results/cifar10_relabel_defaults --against surrogate_distilled --limit 100
      $JAXPLAIN evaluate --config experiments/configs/surrogate_distilled_test.toml
      $PYTHON experiments/paired.py results/surrogate_distilled_test results/surrogate_refine_test \
        results/surrogate_features_test results/relabel_test_size results/relabel_test_rise \
        results/relabel_test_baselines --against surrogate_distilled --limit 64 ;;
    bench-surrogate)
      # the surrogate (preset, _fast artefact, refined with 10 and 40 steps) against Grad-CAM and RISE; the
      # issue's 224 x 224 GPU row: SURROGATE_BATCH=256 on a GPU (defaults: the CPU rows of results/README.md)
      refined='{"surrogate_fast": {"checkpoint": "checkpoints/surrogate_MODEL_fast"},
        "surrogate_refine_10": {"refine_steps": 10}, "surrogate_refine_40": {"refine_steps": 40}}'
      methods=surrogate,surrogate_fast=surrogate,surrogate_refine_10=surrogate,surrogate_refine_40=surrogate,gradcam
      $PYTHON experiments/benchmark.py --model efficientnet_lite0 --data "$JAXPLAIN_DATA/imagenet-dev" \
        --methods "$methods${SURROGATE_RISE:+,rise}" --settings "${refined/MODEL/efficientnet_lite0}" \
        --batch "${SURROGATE_BATCH:-16}" --teacher-batch 256
      $PYTHON experiments/benchmark.py --model cifar10_resnet_small --data tfds:cifar10_jpeg:test \
        --methods "$methods${SURROGATE_RISE:+,rise}" --settings "${refined/MODEL/cifar10_resnet_small}" \
        --batch "${SURROGATE_BATCH:-64}" --teacher-batch 1024 ;;
    relabel-dev-study)
      # re-label distillation's design choices, on the even (development) rows of imagenet-dev only
      dev_split
      $PYTHON experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit "${STUDY_LIMIT:-32}" \
        --out results/relabel_dev_study
      $PYTHON experiments/paired.py results/relabel_dev_study --against default
      # the neighbourhood: spliced against residual and Grad-CAM, then the window share and the change map
      for study in relabel_dev_spliced relabel_dev_splice_share relabel_dev_change; do
        $JAXPLAIN evaluate --config "experiments/configs/$study.toml"
      done
      $PYTHON experiments/paired.py results/relabel_dev_spliced results/relabel_dev_splice_share --against relabel_spliced
      $PYTHON experiments/paired.py results/relabel_dev_spliced results/relabel_dev_change --against relabel_spliced
      # the student and the map again, on the spliced neighbourhood
      $PYTHON experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit "${STUDY_LIMIT:-32}" \
        --neighbourhood spliced --out results/relabel_dev_study_spliced
      $PYTHON experiments/paired.py results/relabel_dev_study_spliced --against default
      # twice the samples against the soft-label student (the default it chose)
      $JAXPLAIN evaluate --config experiments/configs/relabel_dev_samples.toml
      $PYTHON experiments/paired.py results/relabel_dev_samples results/relabel_dev_spliced --against relabel_soft
      # a finer student with more samples, from today's ImageNet defaults
      $PYTHON experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit "${STUDY_LIMIT:-32}" \
        --neighbourhood spliced --baseline attribution=magnitude --baseline soft_weight=1.0 --baseline hard_weight=0.0 \
        --baseline student_resolution=16 --variants samples2000,grid32,grid32_samples2000 \
        --out results/relabel_dev_study_grid32
      $PYTHON experiments/paired.py results/relabel_dev_study_grid32 --against default
      # 4000 samples (RISE's query count); its first 2000 are the study above's
      $PYTHON experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit "${STUDY_LIMIT:-32}" --samples 4000 \
        --neighbourhood spliced --baseline attribution=magnitude --baseline soft_weight=1.0 --baseline hard_weight=0.0 \
        --baseline student_resolution=16 --variants grid32_samples2000,samples4000,grid32_samples4000 \
        --out results/relabel_dev_study_samples4000
      $PYTHON experiments/paired.py results/relabel_dev_study_samples4000 --against default
      # a student on the size of each pixel's change; the splice windows' grid
      $PYTHON experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit "${STUDY_LIMIT:-32}" --samples 1000 \
        --neighbourhood spliced --baseline attribution=magnitude --baseline soft_weight=1.0 --baseline hard_weight=0.0 \
        --baseline student_resolution=16 \
        --variants abs_magnitude,abs_change_map,abs_centred_magnitude,abs_centred_change_map --out results/relabel_dev_study_abs
      $PYTHON experiments/paired.py results/relabel_dev_study_abs --against default
      $JAXPLAIN evaluate --config experiments/configs/relabel_dev_splice_grid.toml
      $PYTHON experiments/paired.py results/relabel_dev_splice_grid results/relabel_dev_samples --against relabel_soft
      # the signed change map (and the size input) on development grids, where the map must sit on the cell's
      # object, and on the development photos; Grad-CAM on the same cells as the reference
      [ -f runs/grids-dev/labels.tsv ] || $JAXPLAIN data grids --data runs/imagenet-dev-dev.tsv --out runs/grids-dev --count 64 --seed 0
      $PYTHON experiments/relabel_study.py --data runs/grids-dev --limit "${STUDY_LIMIT:-32}" --samples 1000 \
        --neighbourhood spliced --baseline attribution=magnitude --baseline soft_weight=1.0 --baseline hard_weight=0.0 \
        --baseline student_resolution=16 \
        --variants change_map,smooth1,abs_magnitude,abs_change_map,abs_centred_change_map --out results/relabel_dev_grids_study
      $PYTHON experiments/relabel_study.py --data runs/imagenet-dev-dev.tsv --limit "${STUDY_LIMIT:-32}" --samples 1000 \
        --neighbourhood spliced --baseline attribution=magnitude --baseline soft_weight=1.0 --baseline hard_weight=0.0 \
        --baseline student_resolution=16 --variants change_map,abs_change_map --out results/relabel_dev_study_signed
      $JAXPLAIN evaluate --config experiments/configs/relabel_dev_grids_gradcam.toml
      $PYTHON experiments/paired.py results/relabel_dev_grids_study --against default --metric gridpg
      $PYTHON experiments/paired.py results/relabel_dev_grids_study results/relabel_dev_grids_gradcam --metric gridpg --against gradcam
      $PYTHON experiments/paired.py results/relabel_dev_study_signed --against default ;;
    relabel-test)
      # relabel against Grad-CAM and RISE on the test split: held-out rows never used for a choice
      test_split
      $JAXPLAIN evaluate --config experiments/configs/relabel_test.toml
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_rise.toml
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_spliced.toml
      $PYTHON experiments/paired.py results/relabel_test_spliced results/relabel_test --against relabel_spliced
      $PYTHON experiments/paired.py results/relabel_test_spliced results/relabel_test_rise --against relabel_spliced
      # the soft-label student the spliced development study chose, on the same test images
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_soft.toml
      $PYTHON experiments/paired.py results/relabel_test_soft results/relabel_test_spliced results/relabel_test \
        results/relabel_test_rise --against relabel_soft
      # 4000 samples, chosen on the development split
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_samples4000.toml
      $PYTHON experiments/paired.py results/relabel_test_samples4000 results/relabel_test_soft results/relabel_test \
        results/relabel_test_rise --against relabel_4000
      # the same comparison on 128 test images (the runs above go on to 128; Grad-CAM and random beside them)
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_baselines.toml
      $PYTHON experiments/paired.py results/relabel_test_samples4000 results/relabel_test_rise \
        results/relabel_test_baselines --against relabel_4000
      # today's map (signed change map, size input; chosen on the development grids), on the same images and seed
      $JAXPLAIN evaluate --config experiments/configs/relabel_test_size.toml
      $PYTHON experiments/paired.py results/relabel_test_size results/relabel_test_samples4000 results/relabel_test_rise \
        results/relabel_test_baselines --against relabel_size --limit 64 ;;
    relabel-cifar-dev)
      # re-label choices for CIFAR-10 on its development images (the second half of its test split)
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_dev_probe.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_dev_probe --against relabel
      $PYTHON experiments/relabel_study.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \
        --limit 48 --neighbourhood spliced --out results/cifar10_relabel_dev_study
      $PYTHON experiments/paired.py results/cifar10_relabel_dev_study --against default
      # the soft-label student (chosen on ImageNet's development split) with the change map
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_dev_soft.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_dev_soft --against relabel_change
      # the study again from the choices above (change map, soft labels)
      $PYTHON experiments/relabel_study.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \
        --limit 48 --neighbourhood spliced --baseline attribution=change --baseline soft_weight=1.0 \
        --baseline hard_weight=0.0 --out results/cifar10_relabel_dev_study_change
      $PYTHON experiments/paired.py results/cifar10_relabel_dev_study_change --against default
      # and again with the student at the input's 32 px, chosen by the study above
      $PYTHON experiments/relabel_study.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \
        --limit 48 --neighbourhood spliced --baseline attribution=change --baseline soft_weight=1.0 \
        --baseline hard_weight=0.0 --baseline student_resolution=32 --out results/cifar10_relabel_dev_study_grid32
      $PYTHON experiments/paired.py results/cifar10_relabel_dev_study_grid32 --against default
      # 4000 samples against today's 2000 (its first 2000 are those)
      $PYTHON experiments/relabel_study.py --model cifar10_resnet_small --data "tfds:cifar10_jpeg:test[5000:]" \
        --limit 48 --samples 4000 --neighbourhood spliced --baseline attribution=change --baseline soft_weight=1.0 \
        --baseline hard_weight=0.0 --baseline student_resolution=32 --variants samples2000,samples4000 \
        --out results/cifar10_relabel_dev_study_samples4000
      $PYTHON experiments/paired.py results/cifar10_relabel_dev_study_samples4000 --against samples2000 ;;
    relabel-cifar)
      # relabel at today's defaults, and with the change map chosen on CIFAR-10's development images,
      # against RISE and Grad-CAM on CIFAR-10 test
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_defaults.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_defaults --against relabel --limit 100
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_change.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_change results/cifar10_relabel_defaults \
        --against relabel_change --limit 100
      # today's defaults (change map, soft-label student)
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_soft.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_soft results/cifar10_relabel_defaults \
        results/cifar10_relabel_change --against relabel_soft --limit 100
      # and the student at the input's 32 px (today's default for the change map)
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_grid32.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_grid32 results/cifar10_relabel_soft \
        results/cifar10_relabel_defaults --against relabel_grid32 --limit 100
      # and 2000 samples for that 32 px student (today's default there)
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_samples2000.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_samples2000 results/cifar10_relabel_grid32 \
        results/cifar10_relabel_defaults --against relabel_2000 --limit 100
      # and 4000 samples, chosen on the development images
      $JAXPLAIN evaluate --config experiments/configs/cifar10_relabel_samples4000.toml
      $PYTHON experiments/paired.py results/cifar10_relabel_samples4000 results/cifar10_relabel_samples2000 \
        results/cifar10_relabel_defaults --against relabel_4000 --limit 100 ;;
    memory)
      # peak memory per method against batch size and chunk: XLA's estimate and the measured peak
      $PYTHON experiments/memory_table.py --batches 1,16 ;;
    dtype)
      # bfloat16 against float32: deletion/insertion on the same 32 test images, and speed
      test_split
      for dtype in float32 bfloat16; do
        $JAXPLAIN evaluate --data runs/imagenet-dev-test.tsv --limit 32 --methods $DTYPE_METHODS --dtype $dtype \
          --examples 0 --out results/dtype_$dtype
        $PYTHON experiments/benchmark.py --model efficientnet_lite0 --data runs/imagenet-dev-test.tsv \
          --batch "${DTYPE_BATCH:-16}" --repeats 2 --methods $DTYPE_METHODS --dtype $dtype
      done
      for metric in deletion insertion; do
        $PYTHON experiments/paired.py results/dtype_float32 results/dtype_bfloat16 --metric $metric
      done ;;
    race)
      # jaxplain against pytorch-grad-cam, captum and batched PyTorch RISE on this machine ('reference' extra)
      (cd experiments && $PYTHON race.py --images 4 --repeats 3 --out ../results/race.csv) ;;
    bench-job)
      heldout_split
      $PYTHON experiments/job_benchmark.py --data runs/imagenet-dev-heldout.tsv --limit 64 --batch 16 \
        --methods gradcam,rise --settings '{"rise": {"num_masks": 1000}}' ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
