# Shared by recipes/<corpus>/run.sh (sourced, not run). A recipe sets DATA_CONFIG, MODEL_CONFIG, EXP
# and RECIPE, defines stage_0_check_data, then calls `recipe_main "$@"`.
#
# Stages (ESPnet/NNSVS style: --stage N --stop_stage M runs N..M; every stage resumes and skips
# work that is already done, so re-running a finished recipe only prints what it skipped):
#   0 check the raw data   1 preprocess   2 binarize   3 train   4 render + evaluate the test split   5 pack
# Options:
#   --stage N / --stop_stage M   (defaults 0 and 5)
#   --exp_name NAME              experiment under the checkpoints root (default: the recipe's)
#   --hparams "k=v,..."          model/training overrides for stage 3 (run.py --hparams)
#   --data_hparams "k=v,..."     dataset-config overrides for stages 0-2, e.g. "dataset.raw_data_dir=/data/CSD"
#   --work_dir_root DIR          where experiments live (default: $SVS_CHECKPOINTS_ROOT, else checkpoints)
#   --pack_dir DIR               where stage 5 writes the packed model (default: packed/<exp_name>)
#   --out_dir DIR                where a recipe writes what it sings after stage 5 (default: outputs/<exp_name>)
# Environment: PY=/path/to/python uses that interpreter and skips tools/setup_env.sh (default: .venv).
# Bad options and unknown stage numbers are one line on stderr and exit code 2.
set -euo pipefail

STAGE_NAMES=("check the raw data" "preprocess" "binarize" "train" "render and evaluate the test split" "pack")
LAST_STAGE=$(( ${#STAGE_NAMES[@]} - 1 ))

recipe_die() {  # one line, exit code 2 (a user error)
  echo "$RECIPE: $*" >&2
  exit 2
}

_stage_number() {  # $1 = option name, $2 = value
  local listing="0-$LAST_STAGE: 0 check data, 1 preprocess, 2 binarize, 3 train, 4 evaluate, 5 pack"
  if ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -gt "$LAST_STAGE" ]; then
    recipe_die "unknown stage '$2' for $1 (stages are $listing)"
  fi
  echo "$2"
}

recipe_parse_args() {
  STAGE=0
  STOP_STAGE=$LAST_STAGE
  HPARAMS=""
  DATA_HPARAMS=""
  WORK_DIR_ROOT=${SVS_CHECKPOINTS_ROOT:-checkpoints}
  PACK_DIR=""
  OUT_DIR=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --stage|--stop_stage|--exp_name|--hparams|--data_hparams|--work_dir_root|--pack_dir|--out_dir)
        [ $# -ge 2 ] || recipe_die "$1 needs a value"
        case "$1" in
          --stage) STAGE=$(_stage_number "$1" "$2") ;;
          --stop_stage) STOP_STAGE=$(_stage_number "$1" "$2") ;;
          --exp_name) EXP=$2 ;;
          --hparams) HPARAMS=$2 ;;
          --data_hparams) DATA_HPARAMS=$2 ;;
          --work_dir_root) WORK_DIR_ROOT=$2 ;;
          --pack_dir) PACK_DIR=$2 ;;
          --out_dir) OUT_DIR=$2 ;;
        esac
        shift 2 ;;
      -h|--help)
        sed -n '2,/^set -euo/p' "$RECIPE_LIB" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0 ;;
      *) recipe_die "unknown option '$1' (options: --stage N --stop_stage M --exp_name NAME --hparams \"k=v\" --data_hparams \"k=v\" --work_dir_root DIR --pack_dir DIR --out_dir DIR)" ;;
    esac
  done
  [ "$STAGE" -le "$STOP_STAGE" ] || recipe_die "--stage $STAGE comes after --stop_stage $STOP_STAGE; nothing to run"
  PACK_DIR=${PACK_DIR:-packed/$EXP}
  OUT_DIR=${OUT_DIR:-outputs/$EXP}
  EXP_DIR=$WORK_DIR_ROOT/$EXP
}

run_stage() {  # $1 = stage number: true when the stage is selected (and prints its header)
  if [ "$STAGE" -le "$1" ] && [ "$STOP_STAGE" -ge "$1" ]; then
    echo "== stage $1: ${STAGE_NAMES[$1]}"
    return 0
  fi
  return 1
}

newest_checkpoint() {  # the newest step checkpoint of $EXP_DIR (empty when none)
  local path step newest="" newest_step=-1
  for path in "$EXP_DIR"/model_ckpt_steps_*.pt; do
    [ -f "$path" ] || continue
    step=${path##*_}
    step=${step%.pt}
    if [ "$step" -gt "$newest_step" ]; then newest_step=$step; newest=$path; fi
  done
  echo "$newest"
}

load_dataset_paths() {  # RAW_DIR, PROCESSED_DIR, BINARY_DIR from the dataset config with --data_hparams
  eval "$($PY recipes/lib/dataset_paths.py "$DATA_CONFIG" "$DATA_HPARAMS")"
}

stage_1_preprocess() {
  # base_preprocess itself skips recordings whose wav, score and settings have not changed.
  $PY preprocessor/runs/base_preprocess.py --config "$DATA_CONFIG" --hparams "$DATA_HPARAMS"
}

stage_2_binarize() {
  # Done when the binary folder was made by this recipe from the same segments (metadata.jsonl's
  # checksum: preprocess rewrites the file on every run, so its time says nothing) and settings.
  local metadata=$PROCESSED_DIR/metadata.jsonl stamp=$BINARY_DIR/.recipe_metadata.sha256 want
  [ -f "$metadata" ] || recipe_die "$metadata: not found; run stage 1 (preprocess) first"
  want=$(sha256sum "$metadata" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -f "$BINARY_DIR/config.yaml" ] && _same_config "$BINARY_DIR/config.yaml"; then
    echo "skipped: $BINARY_DIR was binarized from the same segments with the same settings"
    return 0
  fi
  $PY preprocessor/runs/base_binarize.py --config "$DATA_CONFIG" --hparams "$DATA_HPARAMS"
  echo "$want" > "$stamp"
}

_same_config() {  # $1 = a saved config.yaml: the same as DATA_CONFIG + DATA_HPARAMS resolve to
  $PY - "$DATA_CONFIG" "$DATA_HPARAMS" "$1" <<'EOF'
import sys
from pathlib import Path

sys.path.insert(0, ".")
import yaml

from config.loader import load_config

resolved = load_config(sys.argv[1], sys.argv[2])
saved = yaml.safe_load(Path(sys.argv[3]).read_text(encoding="utf-8"))
sys.exit(0 if resolved == saved else 1)
EOF
}

stage_3_train() {
  # run.py resumes an existing experiment exactly and returns at once when it is already trained.
  local overrides="dataset.binary_dir=$BINARY_DIR${HPARAMS:+,$HPARAMS}"
  if [ -f "$EXP_DIR/config.yaml" ]; then
    $PY tasks/runs/run.py --exp_name "$EXP" --work_dir_root "$WORK_DIR_ROOT" --hparams "$overrides"
  else
    $PY tasks/runs/run.py --config "$MODEL_CONFIG" --exp_name "$EXP" --work_dir_root "$WORK_DIR_ROOT" --hparams "$overrides"
  fi
}

stage_4_evaluate() {
  local ckpt step
  ckpt=$(newest_checkpoint)
  [ -n "$ckpt" ] || recipe_die "$EXP_DIR: no checkpoint; run stage 3 (train) first"
  step=$(basename "$ckpt" .pt)
  step=${step##*_}
  if [ -f "$EXP_DIR/infer/step$step/summary.json" ] && [ -f "$EXP_DIR/infer/step$step/report.html" ]; then
    echo "skipped: $EXP_DIR/infer/step$step/ already holds the renders and metrics of step $step"
    return 0
  fi
  $PY tasks/runs/run.py --exp_name "$EXP" --work_dir_root "$WORK_DIR_ROOT" --infer
  echo "report: $EXP_DIR/infer/step$step/report.html"
}

stage_5_pack() {
  local ckpt
  ckpt=$(newest_checkpoint)
  [ -n "$ckpt" ] || recipe_die "$EXP_DIR: no checkpoint; run stage 3 (train) first"
  local best=$EXP_DIR/model_best.pt
  if [ -d "$PACK_DIR" ] && [ "$PACK_DIR" -nt "$ckpt" ] && { [ ! -f "$best" ] || [ "$PACK_DIR" -nt "$best" ]; }; then
    echo "skipped: $PACK_DIR is newer than the experiment's checkpoints"
    return 0
  fi
  $PY inference/visinger.py --work_dir_root "$WORK_DIR_ROOT" --pack "$EXP" --out "$PACK_DIR"
}

recipe_main() {
  RECIPE_LIB=${BASH_SOURCE[0]}
  recipe_parse_args "$@"
  if [ -z "${PY:-}" ]; then
    bash tools/setup_env.sh
    PY=.venv/bin/python
  fi
  local started
  started=$(date +%s)
  load_dataset_paths
  if run_stage 0; then stage_0_check_data; fi
  if run_stage 1; then stage_1_preprocess; fi
  if run_stage 2; then stage_2_binarize; fi
  if run_stage 3; then stage_3_train; fi
  if run_stage 4; then stage_4_evaluate; fi
  if run_stage 5; then
    stage_5_pack
    if declare -F after_pack >/dev/null; then after_pack; fi
  fi
  echo "stages $STAGE-$STOP_STAGE done in $(( $(date +%s) - started )) s"
}
