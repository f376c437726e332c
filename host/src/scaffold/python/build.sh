#!/bin/sh
# Build {{id}}.wasm, ready to drop into an inlet plugins folder. Installs
# componentize-py into .venv first if it is missing (needs python3 with venv);
# COMPONENTIZE_PY names one installed elsewhere.
set -eu
cd "$(dirname "$0")"
tool=${COMPONENTIZE_PY:-.venv/bin/componentize-py}
if [ ! -x "$tool" ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet componentize-py==0.25.1
fi
"$tool" -d wit -w plugin componentize app -o {{id}}.wasm
echo "built {{id}}.wasm"
