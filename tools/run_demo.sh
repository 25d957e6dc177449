#!/usr/bin/env bash
# The main job on the embedded demo corpus, from nothing to a sung MIDI. Kept as the short command;
# the work is recipes/demo/run.sh (stages 0-5: demo corpus, preprocess, binarize, train, render +
# evaluate the test split, pack, then the packed model sings an example score). Re-running resumes.
#   bash tools/run_demo.sh                                    # EXP=demo_visinger by default
#   EXP=my_demo bash tools/run_demo.sh --hparams "trainer.max_updates=200"
#   bash tools/run_demo.sh --stage 4 --stop_stage 5           # any recipe option (recipes/lib/stages.sh)
set -euo pipefail
exec bash "$(dirname "$0")/../recipes/demo/run.sh" "$@"
