#!/usr/bin/env bash
# `t2a-ray doctor` on the GPU machine, --quick then full, each timed; the full record is the one to keep
# as benchmarks/results/doctor_${NAME}.md. Both tables are printed.
#
#   OUT=/tmp/out NAME=h200 bash benchmarks/doctor_gpu.sh            # every visible GPU
#   OUT=/tmp/out NAME=h200-x2 bash benchmarks/doctor_gpu.sh --gpus 2
#
# Writes $OUT/quick/ and $OUT/full/ (doctor.md, doctor.json) and $OUT/doctor_${NAME}.md (the full
# record). Exit status: the full run's (0 when no check fails).
set -uo pipefail
out=${OUT:?set OUT to a folder for the records}
name=${NAME:-h200}
export PYTHONUNBUFFERED=1

t2a() {
    if command -v t2a-ray >/dev/null; then
        t2a-ray "$@"
    else  # installed with pip --target: no console script on PATH
        python3 -c 'import sys; sys.argv[0] = "t2a-ray"; from t2a_ray.cli import main; main()' "$@"
    fi
}

nvidia-smi --query-gpu=index,name,driver_version,power.limit,temperature.gpu --format=csv || true
start=$SECONDS
t2a doctor --quick --out "$out/quick" "$@"
echo "quick: $((SECONDS - start)) s"
start=$SECONDS
t2a doctor --out "$out/full" "$@"
rc=$?
echo "full: $((SECONDS - start)) s, exit $rc"
cp "$out/full/doctor.md" "$out/doctor_${name}.md"
exit "$rc"
