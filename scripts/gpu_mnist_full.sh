#!/usr/bin/env bash
# Chapter 8 at paper scale on one GPU: 8-bit MNIST (n_max = 255, t_end = 15) and binarized
# MNIST (32x32, threshold > 0.5, n_max = 1, t_end = 10), each trained with the `full` preset,
# then sampled (resumable .npz shards + a PNG grid), scored and checked.
#
#   bash scripts/gpu_mnist_full.sh            # everything, into runs/
#   RUNS=/scratch/runs STEPS=20000 bash scripts/gpu_mnist_full.sh   # shorter run elsewhere
#
# Rerun the same command after any interruption: training resumes from the last checkpoint
# (every 10,000 steps) and sampling skips finished shards.
# Data: MNIST downloads into $BLACKOUT_DATA_DIR (default ~/.cache/blackout_tutorial). On a
# machine without network, copy the four train-/t10k-*-ubyte.gz files into
# $BLACKOUT_DATA_DIR/mnist/ first (the error message of the first step says exactly where).
# Environment: RUNS (output root), STEPS (override the 200,000 training steps), N_SAMPLES
# (default 10000), SAMPLE_STEPS (default 1000), N_TEST / ELBO_STEPS (held-out images and time
# points of the ELBO, default 1000 / 100), SCALE (default full; `smoke` checks the
# script in a minute on a CPU with the bundled MNIST-5k), PRESETS (default "mnist binarized-mnist").
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNS=${RUNS:-runs} SCALE=${SCALE:-full} STEPS=${STEPS:-} N_SAMPLES=${N_SAMPLES:-10000}
export SAMPLE_STEPS=${SAMPLE_STEPS:-1000}
PY=${PYTHON:-python}

for PRESET in ${PRESETS:-mnist binarized-mnist}; do
  export PRESET RUN="$RUNS/${PRESET}_${SCALE}"
  echo "=== $PRESET ($SCALE) -> $RUN"
  # 1. Train (resumes if $RUN holds a checkpoint); prints throughput and peak GPU memory.
  $PY - <<'EOF'
import os
from blackout_tutorial import data, presets, profiles, train
print(profiles.describe())
preset = presets.get_preset(os.environ["PRESET"], os.environ["SCALE"])
preset = presets.with_overrides(preset, steps=int(os.environ["STEPS"]) if os.environ["STEPS"] else None)
dataset = data.load_dataset(preset.dataset)   # download, or a message saying where to put the files
print(train.train(preset, os.environ["RUN"], dataset=dataset).summary())
EOF
  # 2. Samples: resumable shards -> one uint8 .npz [N, C, H, W] + a grid; 3. scores.
  $PY - <<'EOF'
import os, time, torch
from blackout_tutorial import data, evaluate, plotting, train
run = os.environ["RUN"]
n, steps = int(os.environ["N_SAMPLES"]), int(os.environ["SAMPLE_STEPS"])
_, preset = train.load_model(run)
start = time.perf_counter()
samples = evaluate.generate_shards(run, f"{run}/shards_{steps}", n=n, steps=steps, progress=True)
print(f"{n} samples with {steps} steps in {time.perf_counter() - start:.0f} s (shards reused if present)")
dataset = data.load_dataset(preset.dataset)
evaluate.export_samples_npz(samples, f"{run}/samples_{n}_{steps}.npz", dataset.n_max)
ax = plotting.image_grid(samples[:100], dataset.n_max, nrow=10)
ax.figure.savefig(f"{run}/samples_{steps}.png", dpi=150, bbox_inches="tight")
report = evaluate.digit_report(samples, dataset)
for key, value in report.items():
    print(f"{key}: {value:.4f}")
EOF
  # 4. Negative ELBO in bits/dim on held-out digits.
  $PY -m blackout_tutorial evaluate --run "$RUN" --n-test "${N_TEST:-1000}" --elbo-steps "${ELBO_STEPS:-100}" --json "$RUN/elbo.json"
done
echo "Done. Runs, samples (.npz, .png) and scores are in $RUNS/."
