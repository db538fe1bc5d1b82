#!/usr/bin/env bash
# Chapter 9 at paper scale on one GPU: CIFAR-10 with the `paper` U-Net (35.7M parameters),
# T = 1000, t_end = 15, Adam 2e-4, batch 256, EMA 0.9999, bf16 autocast, random flips;
# then 50,000 samples (1000 steps), exported as uint8 .npz and PNGs, and FID with the
# standard Inception features against the CIFAR-10 training set (the paper reports 4.58).
#
#   bash scripts/gpu_cifar10_full.sh                                  # everything, into runs/
#   STEPS=200000 N_SAMPLES=10000 bash scripts/gpu_cifar10_full.sh      # a shorter, cheaper run
#   torchrun is used automatically when NPROC > 1 (e.g. NPROC=8 on an 8-GPU node).
#
# Resumable: rerun the same command after any interruption. Training continues from the last
# checkpoint (every 10,000 steps, about every 10-20 minutes at the expected speed; a killed
# run loses at most that), and sampling skips the finished 500-image shards.
# Data: CIFAR-10 downloads into $BLACKOUT_DATA_DIR (default ~/.cache/blackout_tutorial). On a
# machine without network, copy cifar-10-python.tar.gz there first (the first step's error
# says exactly where). FID needs `pip install torch-fidelity` (or clean-fid / pytorch-fid) and
# downloads the Inception weights and CIFAR-10 reference statistics on first use.
# Environment: RUNS, STEPS (override 1.3M steps), N_SAMPLES (50000), SAMPLE_STEPS (1000),
# NPROC (1), N_TEST / ELBO_STEPS (ELBO on held-out images, 1000 / 100), SCALE (full; `SCALE=smoke CIFAR_FIXTURE=1` checks the script on a CPU in a minute
# with a synthetic FIXTURE in the CIFAR-10 format -- not CIFAR-10, its FID means nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
export SCALE=${SCALE:-full} STEPS=${STEPS:-} N_SAMPLES=${N_SAMPLES:-50000}
export SAMPLE_STEPS=${SAMPLE_STEPS:-1000} CIFAR_FIXTURE=${CIFAR_FIXTURE:-0}
export RUN=${RUNS:-runs}/cifar10_${SCALE}
PY=${PYTHON:-python}
NPROC=${NPROC:-1}
echo "=== cifar10 ($SCALE) -> $RUN"

# 1. Train (resumes if $RUN holds a checkpoint); prints throughput and peak GPU memory.
TRAIN_PY=$(cat <<'EOF'
import os
from blackout_tutorial import data, evaluate, presets, profiles, train
preset = presets.get_preset("cifar10", os.environ["SCALE"])
preset = presets.with_overrides(preset, steps=int(os.environ["STEPS"]) if os.environ["STEPS"] else None)
if os.environ["CIFAR_FIXTURE"] == "1":
    print("Training on a synthetic FIXTURE in the CIFAR-10 format, NOT CIFAR-10")
    dataset = evaluate.load_cifar10_fixture(
        evaluate.write_cifar10_fixture(os.environ["RUN"] + "_fixture/cifar-10-python.tar.gz"))
else:
    dataset = data.load_dataset("cifar10")   # download, or a message saying where to put it
if int(os.environ.get("RANK", "0")) == 0:
    print(profiles.describe())
result = train.train(preset, os.environ["RUN"], dataset=dataset)
if int(os.environ.get("RANK", "0")) == 0:
    print(result.summary())   # steps, loss, time, images/s, peak GPU memory (rank 0)
EOF
)
if [ "$NPROC" -gt 1 ]; then
  SCRIPT=$(mktemp --suffix=.py)
  printf '%s\n' "$TRAIN_PY" > "$SCRIPT"
  torchrun --standalone --nproc_per_node "$NPROC" "$SCRIPT"
else
  $PY -c "$TRAIN_PY"
fi

# 2. 50,000 samples in resumable shards -> uint8 .npz [N, 3, 32, 32] + PNG folder + grid;
# 3. FID with Inception features (a clear message, not a crash, when no FID package is there).
$PY - <<'EOF'
import os, time
from blackout_tutorial import evaluate, plotting
run, n, steps = os.environ["RUN"], int(os.environ["N_SAMPLES"]), int(os.environ["SAMPLE_STEPS"])
start = time.perf_counter()
samples = evaluate.generate_shards(run, f"{run}/shards_{steps}", n=n, steps=steps, progress=True)
print(f"{n} samples with {steps} steps in {time.perf_counter() - start:.0f} s (shards reused if present)")
evaluate.export_samples_npz(samples, f"{run}/samples_{n}_{steps}.npz")
png_dir = evaluate.export_samples_png(samples, f"{run}/png_{n}_{steps}")
ax = plotting.image_grid(samples[:100], 255, nrow=10)
ax.figure.savefig(f"{run}/samples_{steps}.png", dpi=150, bbox_inches="tight")
if n < 50_000:
    print(f"note: {n} < 50,000 samples: FID is biased upwards, not comparable with the paper")
try:
    fid = evaluate.inception_fid(png_dir, "cifar10-train")
except ImportError as err:
    print(f"FID skipped: {err}")
else:
    print(f"FID ({n} samples, {steps} steps, Inception features, vs CIFAR-10 train): {fid:.2f} "
          f"(paper: {evaluate.PAPER_CIFAR10_FID})")
    open(f"{run}/fid_{n}_{steps}.txt", "w").write(f"{fid:.4f}\n")
EOF

# 4. Negative ELBO in bits/dim on 1000 held-out CIFAR-10 images (100 random time points each).
if [ "$CIFAR_FIXTURE" != "1" ]; then
  $PY -m blackout_tutorial evaluate --run "$RUN" --n-test "${N_TEST:-1000}" --elbo-steps "${ELBO_STEPS:-100}" --json "$RUN/elbo.json"
fi
echo "Done. Checkpoint, samples (.npz, PNG folder, grid) and scores are in $RUN/."
