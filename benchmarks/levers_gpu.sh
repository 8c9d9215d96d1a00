#!/usr/bin/env bash
# configs/levers-smoke.yaml (or CONFIG=levers, the whole reading) on ONE GPU, full-size random weights:
# benchmarks/runtime_gpu.sh with that sweep, continued across device calls of at most 10 minutes the same way.
#
# usage (device machine, repo root, wheels carried in .whl):  [CONFIG=levers NAME=…] OUT=… bash benchmarks/levers_gpu.sh SECONDS
# The wheels: as /work/shared/device/NOTES.md says, plus torchao for the precision axis —
#   ../shared/device/wheelhouse.sh torchao==0.18.0        (a 3.4 MB cp310-abi3 wheel)
# Leaves $OUT/<name>.tar (the run folder) and $OUT/<name>.log; put the tar at .runs/<name>.tar for the next call.
set -u
export CONFIG=${CONFIG:-levers-smoke}
export NAME=${NAME:-$CONFIG}
export ARCHIVE=$NAME
python3 -c "import torchao" 2>/dev/null || echo "== torchao is missing: the launch will refuse precision int8/fp8"
exec bash "$(dirname "$0")/runtime_gpu.sh" "$@"
