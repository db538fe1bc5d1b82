#!/usr/bin/env bash
# Chapter 9 at paper scale on one GPU: CIFAR-10 with the `paper` U-Net (35.7M
# parameters), T = 1000, t_end = 15, Adam 2e-4, batch 256, EMA 0.9999, bf16 autocast,
# random flips; then 50,000 samples (1000 steps), exported as uint8 .npz, NHWC arr_0 and
# PNGs, and FID with the standard Inception features against the CIFAR-10 training set
# (paper: 4.58).
#
#   bash scripts/gpu_cifar10_full.sh  # everything, into runs/
#   STEPS=200000 N_SAMPLES=10000 bash scripts/gpu_cifar10_full.sh  # shorter, cheaper
#   NPROC=8 bash scripts/gpu_cifar10_full.sh  # torchrun on 8 GPUs
#   (only the training uses the NPROC GPUs; sampling and FID then run on one GPU)
#
# Resumable: rerun the same command after any interruption. Training continues from the
# last checkpoint (every 10,000 steps), and sampling skips the finished 500-image
# shards.
# Data: CIFAR-10 downloads into $BLACKOUT_DATA_DIR (default ~/.cache/blackout_tutorial);
# on a machine without network, copy cifar-10-python.tar.gz (or cifar10.npz, or the JPEG
# pack cifar10_jpeg.npz: not CIFAR-10 pixels) there first (the error says where). For a
# short offline run with a result bundle, see scripts/gpu_real.sh.
# FID needs `pip install torch-fidelity` (or clean-fid / pytorch-fid) and downloads the
# Inception weights and CIFAR-10 reference statistics on first use.
# Environment: PYTHON, RUNS, STEPS (override 1.3M), N_SAMPLES (50000), SAMPLE_STEPS
# (1000), NPROC (1), N_TEST / ELBO_TERMS (ELBO on held-out images, 1000 / 100), SCALE
# (full; `SCALE=smoke CIFAR_FIXTURE=1` checks the script on a CPU in a minute with a
# synthetic FIXTURE in the CIFAR-10 format -- not CIFAR-10, its FID means nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-full} N=${N_SAMPLES:-50000} S=${SAMPLE_STEPS:-1000} NPROC=${NPROC:-1}
RUN=${RUNS:-runs}/cifar10_${SCALE}
PY=${PYTHON:-python}
DATA=()
if [ "${CIFAR_FIXTURE:-0}" = "1" ]; then
  echo "Training on a synthetic FIXTURE in the CIFAR-10 format, NOT CIFAR-10"
  DATA=(--dataset cifar10-fixture)
fi
LAUNCH=("$PY")
if [ "$NPROC" -gt 1 ]; then
  LAUNCH=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC")
fi
echo "=== cifar10 ($SCALE) -> $RUN"
# 1. Train (resumes); prints throughput and peak GPU memory.
"${LAUNCH[@]}" -m blackout_tutorial train --preset cifar10 --scale "$SCALE" \
  --out "$RUN" ${STEPS:+--steps "$STEPS"} "${DATA[@]}"
# 2. Samples in resumable shards -> uint8 .npz [N, 3, 32, 32], FID arr_0, PNGs, grid.
"$PY" -m blackout_tutorial sample --run "$RUN" --n "$N" --steps "$S" --batch-size 500 \
  --shards "$RUN/shards_$S" --out "$RUN/samples_${N}_$S.npz" --out "$RUN/png_${N}_$S/" \
  --out "$RUN/samples_$S.png" --fid-npz "$RUN/fid_input_${N}_$S.npz"
# 3. ELBO bits/dim on held-out images and Inception FID (skipped with a message when no
#    FID package is installed). The paper's FID, 4.58, uses 50,000 samples.
if [ "$N" -lt 50000 ]; then
  echo "note: $N < 50,000 samples: FID is biased upwards, not comparable with the paper"
fi
"$PY" -m blackout_tutorial evaluate --run "$RUN" "${DATA[@]}" \
  --n-test "${N_TEST:-1000}" --elbo-terms "${ELBO_TERMS:-100}" \
  --fid "$RUN/png_${N}_$S" --json "$RUN/scores.json"
echo "Done. Checkpoint, samples (.npz, PNG folder, grid) and scores are in $RUN/."
