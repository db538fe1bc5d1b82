#!/usr/bin/env bash
# Chapter 8 at paper scale on one GPU: 8-bit MNIST (n_max = 255, t_end = 15) and
# binarized MNIST (32x32, threshold > 0.5, n_max = 1, t_end = 10), each trained with the
# `full` preset, then sampled (resumable .npz shards, one .npz and a PNG grid), scored
# and checked.
#
#   bash scripts/gpu_mnist_full.sh  # everything, into runs/
#   RUNS=/scratch/runs STEPS=20000 bash scripts/gpu_mnist_full.sh  # shorter, elsewhere
#
# Rerun the same command after any interruption: training resumes from the last
# checkpoint (every 10,000 steps) and sampling skips finished shards.
# Data: MNIST downloads into $BLACKOUT_DATA_DIR (default ~/.cache/blackout_tutorial). On
# a machine without network, put mnist.npz (Keras layout) or the four
# train-/t10k-*-ubyte.gz files (in mnist/) there first (the first step's error says
# where). For a short offline run with a result bundle, see scripts/gpu_real.sh.
# Environment: PYTHON, RUNS (output root), STEPS (override the 200,000 training steps),
# N_SAMPLES (10000), SAMPLE_STEPS (1000), N_TEST / ELBO_TERMS (held-out images and
# Monte Carlo terms of the ELBO, 1000 / 100), SCALE (full; `smoke` checks the script in
# a minute on a CPU), PRESETS (default "mnist binarized-mnist").
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-full} N=${N_SAMPLES:-10000} S=${SAMPLE_STEPS:-1000}
PY=${PYTHON:-python}

for PRESET in ${PRESETS:-mnist binarized-mnist}; do
  RUN="${RUNS:-runs}/${PRESET}_${SCALE}"
  echo "=== $PRESET ($SCALE) -> $RUN"
  # 1. Train (resumes); prints throughput and peak GPU memory.
  "$PY" -m blackout_tutorial train --preset "$PRESET" --scale "$SCALE" --out "$RUN" \
    ${STEPS:+--steps "$STEPS"}
  # 2. Samples: resumable shards -> one uint8 .npz [N, C, H, W] (+ n_max) and a grid.
  "$PY" -m blackout_tutorial sample --run "$RUN" --n "$N" --steps "$S" \
    --batch-size 500 --shards "$RUN/shards_$S" --out "$RUN/samples_${N}_$S.npz" \
    --out "$RUN/samples_$S.png"
  # 3. ELBO bits/dim on held-out digits and the digit-classifier scores of the samples.
  "$PY" -m blackout_tutorial evaluate --run "$RUN" --n-test "${N_TEST:-1000}" \
    --elbo-terms "${ELBO_TERMS:-100}" --samples "$RUN/samples_${N}_$S.npz" \
    --json "$RUN/scores.json"
done
echo "Done. Runs, samples (.npz, .png) and scores are in ${RUNS:-runs}/."
