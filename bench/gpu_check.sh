#!/usr/bin/env bash
# What a GPU run must show, in one script (at most ~8 minutes on one H100/H200):
#   1. paper-scale VISinger (config/models/visinger.yaml) updates/s at batch 16 and peak GPU memory,
#      in fp32 (TF32 on), bf16, and bf16 + torch.compile (bench/train_speed.py, fused AdamW);
#   2. a 3-minute bf16 training run through the runner on the real song CSD kr024 (one key trained,
#      the other key held out as validation), then its validation mel L1 (run.py --validate).
#   bash bench/gpu_check.sh               # on a machine with CUDA; copy the figures into docs/BENCHMARKS.md
#   bash bench/gpu_check.sh --dry-run     # the same steps on the CPU with tiny sizes (checks the script itself)
# Without a CUDA device it says so in one line and exits 0. PY=/path/to/python picks an interpreter
# whose torch is a CUDA build (requirements.txt pins the CPU wheel); default .venv/bin/python.
# The real recordings are read from ../shared/data/csd_early (override: CSD_EARLY=/path).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; elif [ $# -gt 0 ]; then echo "gpu_check.sh: unknown argument '$1' (only --dry-run)" >&2; exit 2; fi

if [ "$DRY_RUN" = 0 ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA device visible to $("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo "$PY") - nothing to measure (use a CUDA build of torch on a GPU machine, or --dry-run)"
  exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
started=$(date +%s)
if [ "$DRY_RUN" = 1 ]; then
  DEVICE=cpu
  MODEL=config/models/visinger_demo.yaml
  DATA=config/datasets/svs/demo/preprocess.yaml
  TINY="model.hidden_channels=16,model.inter_channels=8,model.filter_channels=32,model.n_layers=1,model.prior_n_layers=1,model.posterior_n_layers=2,model.flow_n_layers=1,model.upsample_initial_channel=16,model.resblock_kernel_sizes=[3],model.resblock_dilation_sizes=[[1]],discriminator.max_channels=8"
  # aot_eager: the same graph capture as inductor without its C++ code generation (minutes on a small CPU).
  SPEED=(--batch 2 --segment 8 --seconds 1 --warmup 1 --steps 1 --repeats 1 --hparams "$TINY" --compile_backend aot_eager)
  TRAIN_SECONDS=20
  TRAIN_OVERRIDES="$TINY,trainer.device=cpu,trainer.num_workers=0"
else
  DEVICE=cuda
  MODEL=config/models/visinger.yaml
  DATA=config/datasets/svs/csd/preprocess.yaml
  SPEED=(--batch 16 --warmup 3 --steps 10 --repeats 3)
  TRAIN_SECONDS=180
  TRAIN_OVERRIDES="trainer.device=cuda,trainer.precision=bf16,trainer.num_workers=4"
fi
"$PY" -c "import torch; print('torch', torch.__version__, '| device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

echo "== 1. $MODEL training speed at batch ${SPEED[1]} (synthetic batch; median of the timed blocks)"
for variant in "fp32" "bf16" "bf16 --compile"; do
  # shellcheck disable=SC2086  # "$variant" holds the precision and, for the last one, the flag
  "$PY" bench/train_speed.py --config "$MODEL" --device "$DEVICE" --precision $variant "${SPEED[@]}" | grep -v '^machine:' || true
done

echo "== 2. ${TRAIN_SECONDS}-second training run on CSD kr024 (train: headshoulder_kr_0u, validation: headshoulder_kr_4d)"
CSD_EARLY=${CSD_EARLY:-../shared/data/csd_early}
if [ ! -f "$CSD_EARLY/wav/headshoulder_kr_0u.wav" ]; then
  echo "skipped: $CSD_EARLY/wav/headshoulder_kr_0u.wav not found (set CSD_EARLY to the early CSD release's folder)"
else
  "$PY" -c "import sys; from pathlib import Path; sys.path.insert(0, '.'); from preprocessor.csd_convert import link_early_tree; \
link_early_tree(Path('$CSD_EARLY').resolve(), Path('$WORK/raw'), ['headshoulder_kr_0u', 'headshoulder_kr_4d'])"
  H="dataset.raw_data_dir=$WORK/raw,dataset.processed_dir=$WORK/processed,dataset.binary_dir=$WORK/binary,dataset.layout=early,dataset.demo_corpus=false,dataset.name=csd_kr024,dataset.valid_songs=[headshoulder_kr_4d],dataset.test_songs=[]"
  "$PY" preprocessor/runs/base_preprocess.py --config "$DATA" --hparams "$H" >/dev/null
  "$PY" preprocessor/runs/base_binarize.py --config "$DATA" --hparams "$H" | tail -n 3
  # Train until SIGTERM: the runner finishes the update in flight, writes a checkpoint and exits 0.
  "$PY" tasks/runs/run.py --config "$MODEL" --exp_name kr024 --work_dir_root "$WORK/ckpt" \
    --hparams "dataset.binary_dir=$WORK/binary,$TRAIN_OVERRIDES,trainer.max_updates=1000000,trainer.val_check_interval=1000000,trainer.log_interval=50" \
    > "$WORK/train.log" 2>&1 &
  trainer=$!
  sleep "$TRAIN_SECONDS"
  kill -TERM "$trainer" 2>/dev/null || true
  wait "$trainer" || { echo "training failed:"; tail -n 20 "$WORK/train.log"; exit 1; }
  grep -E "stopped by SIGTERM|step [0-9]+:" "$WORK/train.log" | tail -n 2 || true
  "$PY" tasks/runs/run.py --exp_name kr024 --work_dir_root "$WORK/ckpt" --validate 2>&1 | grep -E "mel_l1|validation" | tail -n 2
fi
echo "gpu_check done in $(( $(date +%s) - started )) s"
