#!/usr/bin/env bash
# VISinger on the Korean half of the Children's Song Dataset (CSD), in stages:
#   bash recipes/csd/run.sh                                   # all stages, 0-5 (resumes; skips finished work)
#   bash recipes/csd/run.sh --stage 3 --stop_stage 4          # train, then render + evaluate the test split
#   bash recipes/csd/run.sh --data_hparams "dataset.raw_data_dir=/data/CSD" --hparams "trainer.precision=bf16"
# Options and stages: recipes/lib/stages.sh (or --help). Outputs: data/processed/csd, data/binary/csd,
# checkpoints/csd_visinger (infer/step<N>/ with metrics.json and report.html), packed/csd_visinger.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECIPE=recipes/csd/run.sh
DATA_CONFIG=${DATA_CONFIG:-config/datasets/svs/csd/preprocess.yaml}
MODEL_CONFIG=${MODEL_CONFIG:-config/models/visinger.yaml}
EXP=csd_visinger
source recipes/lib/stages.sh

stage_0_check_data() {
  # Either release: the final one (korean/wav + korean/csv) or the early one (Korean/wav + Korean/mid).
  local wavs=0 path
  for path in "$RAW_DIR"/korean/wav/*.wav "$RAW_DIR"/Korean/wav/*.wav; do
    if [ -f "$path" ]; then wavs=$((wavs + 1)); fi
  done
  if [ "$wavs" -eq 0 ]; then
    recipe_die "$RAW_DIR: no CSD recordings (korean/wav/*.wav or Korean/wav/*.wav). CSD (Choi et al., ISMIR 2020 LBD) is published on Zenodo, record 4785016 (doi:10.5281/zenodo.4785016, CSD.zip), for non-commercial use under CC BY-NC-SA 4.0 (the early GitHub release: CC BY-NC-ND 4.0); unzip it and pass --data_hparams \"dataset.raw_data_dir=/path/to/CSD\""
  fi
  echo "found $wavs Korean recordings under $RAW_DIR"
}

recipe_main "$@"
