#!/usr/bin/env bash
# One command, no network: train a named preset on real data on one GPU for a fixed
# wall-time (or step) budget, then sample, score and bundle the results (Chapters 8-9).
#
#   bash scripts/gpu_real.sh --data-dir DATA --out OUT [--preset mnist] [--scale full]
#        [--device cuda] [--max-seconds 420] [--steps N] [--n-samples 1000]
#        [--sample-steps 250] [--sample-batch 1000] [--n-test 1000] [--elbo-terms 100]
#        [--bf16-cpu]
#
# Meant to run in about 9 minutes on one H200: up to 7 minutes of training
# (--max-seconds 420), then 1000 samples with 250 tau-leaping steps, the ELBO on 1000
# held-out images and the metrics, each well under a minute. Smoke test on a CPU (about
# a minute): --device cpu --scale smoke --max-seconds 20.
#
# What it carries: the repository's code (about 5 MB; the venv or an installed torch
# must be on the machine) and the data folder DATA, which must hold
#   mnist, binarized-mnist: mnist.npz (Keras layout, 11.3 MB), read by data.load_dataset;
#   cifar10: cifar10_jpeg.npz (JPEG pack, 55.8 MB with its test arrays; the loader needs
#            test arrays, so cut them to a few images to carry the train JPEGs in
#            ~47 MB), or cifar10.npz. Samples of a JPEG-trained model are not CIFAR-10.
# Code + data stay under 64 MiB. Nothing is downloaded: a missing file is a one-line
# error naming the data folder.
#
# On the project's device tool (files come back from $OUT: at most 8, 16 MB each):
#   mkdir -p gpu_data && cp ../shared/data/mnist.npz gpu_data/  # and ignore gpu_data/
#   run(carry=["gpu_data"], timeout_s=600, command="PYTHON=python3 bash
#       scripts/gpu_real.sh --data-dir gpu_data --out /tmp/g --max-seconds 360 &&
#       cp /tmp/g/bundle.tar.gz $OUT/")
#
# Resumable: rerunning the same command continues training from OUT/run/checkpoint.pt
# for another --max-seconds (up to the preset's steps, or --steps), then re-samples.
#
# The bundle OUT/bundle/ (small; copy it back):
#   samples.npz (uint8 'samples' [N, C, H, W] + 'n_max'), samples.png (a grid),
#   history.csv (loss, lr, gradient norm per step), config.json (the preset),
#   train_throughput.json (images/s of this session, peak GPU memory from
#   torch.cuda.max_memory_allocated, threads, bf16), sample_throughput.json (images/s,
#   peak GPU memory of sampling), scores.json (ELBO bits/dim +- stderr; digit metrics
#   for MNIST), metrics.json (+ its sample files; scripts/real_metrics.py, when that
#   script exists),
#   model.pt (float16 EMA export, only if under 16 MB), summary.txt (all printed lines);
#   all of it packed as OUT/bundle.tar.gz (one file to copy back).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DATA="" OUT="" PRESET=mnist SCALE=full DEVICE=cuda MAXS=420 STEPS="" N=1000 SS=250
SB=1000 NTEST=1000 TERMS=100 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --max-seconds) MAXS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --n-samples) N=$2; shift 2 ;;
    --sample-steps) SS=$2; shift 2 ;;
    --sample-batch) SB=$2; shift 2 ;;
    --n-test) NTEST=$2; shift 2 ;;
    --elbo-terms) TERMS=$2; shift 2 ;;
    --bf16-cpu) EXTRA+=(--bf16-cpu); shift ;;
    *) echo "gpu_real.sh: error: unknown argument $1 (see the header)" >&2; exit 2 ;;
  esac
done
if [ -z "$DATA" ] || [ -z "$OUT" ]; then
  echo "gpu_real.sh: error: --data-dir and --out are required" >&2; exit 2
fi
RUN="$OUT/run" BUNDLE="$OUT/bundle"
mkdir -p "$BUNDLE"
LOG="$BUNDLE/summary.txt"
echo "=== $PRESET ($SCALE) on $DEVICE, data $DATA -> $OUT ($(date -u))" | tee -a "$LOG"
# 1. Train for at most --max-seconds (resumes; checkpoint on stop; throughput.json).
"$PY" -m blackout_tutorial train --preset "$PRESET" --scale "$SCALE" --out "$RUN" \
  --data-dir "$DATA" --device "$DEVICE" --max-seconds "$MAXS" --no-progress \
  ${STEPS:+--steps "$STEPS"} "${EXTRA[@]}" | tee -a "$LOG"
cp "$RUN/history.csv" "$RUN/config.json" "$BUNDLE/"
cp "$RUN/throughput.json" "$BUNDLE/train_throughput.json"
# 2. Samples from the EMA weights of the last checkpoint (always fresh: no shards).
"$PY" -m blackout_tutorial sample --run "$RUN" --device "$DEVICE" --n "$N" \
  --steps "$SS" --batch-size "$SB" --out "$BUNDLE/samples.npz" \
  --out "$BUNDLE/samples.png" --json "$BUNDLE/sample_throughput.json" \
  --no-progress | tee -a "$LOG"
# 3. ELBO bits/dim on held-out images (+ digit-classifier metrics for MNIST).
"$PY" -m blackout_tutorial evaluate --run "$RUN" --data-dir "$DATA" \
  --device "$DEVICE" --n-test "$NTEST" --elbo-terms "$TERMS" \
  --samples "$BUNDLE/samples.npz" --json "$BUNDLE/scores.json" --no-progress \
  | tee -a "$LOG"
# 4. The metrics of the real-data chapters (classifier confident fraction, Frechet
#    proxy with its real floor), if scripts/real_metrics.py is there.
FAMILY=${PRESET%-cpu}; FAMILY=${FAMILY%-paper}
if [ -f scripts/real_metrics.py ] && [[ " mnist binarized-mnist cifar10 " == *" $FAMILY "* ]]; then
  "$PY" scripts/real_metrics.py "$FAMILY" --checkpoint "$RUN" --data-dir "$DATA" \
    --n "$N" --seeds 1 --steps "$SS" --method tau_leaping --batch-size "$SB" \
    --out "$BUNDLE/metrics.json" 2>&1 | tee -a "$LOG" \
    || echo "note: scripts/real_metrics.py failed; the rest of the bundle stands" \
    | tee -a "$LOG"
fi
# 5. A float16 export of the EMA weights, kept only if under 16 MB.
"$PY" -m blackout_tutorial export --run "$RUN" --out "$OUT/model.pt" | tee -a "$LOG"
if [ "$(stat -c %s "$OUT/model.pt")" -lt 16000000 ]; then
  mv "$OUT/model.pt" "$BUNDLE/model.pt"
else
  echo "model.pt is over 16 MB: left in $OUT, not in the bundle" | tee -a "$LOG"
fi
ls -l "$BUNDLE" | tee -a "$LOG"
echo "Done. The bundle is $BUNDLE/ ($(du -sh "$BUNDLE" | cut -f1)), also packed as" \
  "$OUT/bundle.tar.gz." | tee -a "$LOG"
tar -czf "$OUT/bundle.tar.gz" -C "$OUT" bundle
