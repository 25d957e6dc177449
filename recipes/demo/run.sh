#!/usr/bin/env bash
# The small demo VISinger (visinger_fast_demo.yaml: the inverse-STFT decoder, which sang best of the
# four at the demo budget, docs/BENCHMARKS.md "The four decoders") on the embedded demo corpus (a synthetic voice singing original Korean
# lyrics, generated here: nothing is downloaded), in the same stages as recipes/csd/run.sh:
#   bash recipes/demo/run.sh                                  # all stages (the README's main command)
#   bash recipes/demo/run.sh --stage 4 --stop_stage 4         # only render + evaluate the test split
#   bash recipes/demo/run.sh --hparams "trainer.max_updates=200"
# After stage 5 the packed model sings data/examples/sanchaek.mid into outputs/<exp>/sanchaek.wav (+ PNG).
# Options and stages: recipes/lib/stages.sh (or --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
RECIPE=recipes/demo/run.sh
DATA_CONFIG=${DATA_CONFIG:-config/datasets/svs/demo/preprocess.yaml}
MODEL_CONFIG=${MODEL_CONFIG:-config/models/visinger_fast_demo.yaml}
EXP=${EXP:-demo_visinger}
EXAMPLE_SCORE=data/examples/sanchaek.mid
source recipes/lib/stages.sh

stage_0_check_data() {
  # The corpus is generated, so "checking" it means writing it when it is missing (a complete one is kept).
  if [ -f "$RAW_DIR/.demo_corpus.json" ]; then
    echo "skipped: the demo corpus is at $RAW_DIR"
    return 0
  fi
  $PY -m preprocessor.demo_corpus --out "$RAW_DIR"
}

after_pack() {
  local wav=$OUT_DIR/$(basename "$EXAMPLE_SCORE" .mid).wav
  if [ -f "$wav" ] && [ "$wav" -nt "$PACK_DIR" ]; then
    echo "skipped: $wav is newer than the pack"
  else
    $PY inference/visinger.py --ckpt "$PACK_DIR" --midi "$EXAMPLE_SCORE" --out "$wav" --plot
  fi
  echo "  sung example:  $wav (+ .png)"
  echo "  test renders:  $EXP_DIR/infer/ (metrics.json, report.html)"
  echo "  TensorBoard:   .venv/bin/tensorboard --logdir $EXP_DIR/tb"
}

recipe_main "$@"
