#!/usr/bin/env bash
# tessera's one-command GPU pass: the environment, the whole test suite with cuda as the
# default device, the demo (`python3 -m tessera`) and every benchmark, each step bounded by
# its own `timeout` and all of them by one deadline (8 minutes on an H200), all output in
# $OUT (default ./gpu-out), closing with $OUT/SUMMARY.txt (rc and seconds of every step and
# pytest's closing line). It keeps going after a failing step and never waits unbounded.
#
# Run from the project root (or anywhere: it changes to the root) on a GPU machine whose
# python3 already has CuPy 14, torch with CUDA, JAX, pytest-xdist and pytest-timeout. It
# installs nothing and needs no network.
#
#   benchmarks/gpu_pass.sh                      # the full pass, <= 480 s
#   benchmarks/gpu_pass.sh --smoke              # tiny sizes, a few tests: checks this script
#   benchmarks/gpu_pass.sh --steps bench        # only some steps: env,tests,demo,bench
#   benchmarks/gpu_pass.sh --bench "kernels dispatch"   # only these benchmarks
#
# Environment: OUT (output folder), PYTHON (default python3), GPU_PASS_TOTAL_S (the deadline,
# default 480; smoke 3600), GPU_PASS_SMOKE_LIMIT (per-step limit in smoke mode, default 300 s:
# under TESSERA_CUDA_SIM=1 the kernels run on the CPU, slowly; set it to a few seconds to
# see the limits act), GPU_PASS_LIMIT_<step> (one step's limit in seconds, e.g.
# GPU_PASS_LIMIT_tests=300 or GPU_PASS_LIMIT_autodiff=40; the deadline still holds),
# TESSERA_BENCH_SMOKE=1 (what --smoke sets for the benchmarks).
# rc 124 = the step hit its limit (137: killed after it), "skip" = no time was left.

set -u
cd "$(dirname "$0")/.." || exit 2
[ -f tessera/__init__.py ] || { echo "gpu_pass.sh: not in the tessera project root ($PWD)"; exit 2; }

SMOKE=0
STEPS="env,tests,demo,bench"
ONLY_BENCH=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --steps) STEPS="$2"; shift ;;
    --steps=*) STEPS="${1#*=}" ;;
    --bench) ONLY_BENCH="$2"; shift ;;
    --bench=*) ONLY_BENCH="${1#*=}" ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "gpu_pass.sh: unknown argument $1 (see --help)"; exit 2 ;;
  esac
  shift
done

OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
# A fresh kernel cache for this pass (in /tmp, so compiled modules do not travel back with
# $OUT); the tests fill it and the benchmarks after them reuse it.
TESSERA_CACHE_DIR=$(mktemp -d /tmp/tessera-gpu-pass-cache.XXXXXX) || exit 2
export TESSERA_CACHE_DIR
# JAX must not take the GPU from 12 test workers and tessera.
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=.05

if [ "$SMOKE" = 1 ]; then
  export TESSERA_BENCH_SMOKE=1
  TOTAL=${GPU_PASS_TOTAL_S:-3600}
  SL=${GPU_PASS_SMOKE_LIMIT:-300}
else
  TOTAL=${GPU_PASS_TOTAL_S:-480}
fi
# The deadline, less a few seconds for the summary.
START=$(date +%s)
DEADLINE=$((START + TOTAL - 3))
LOG="$OUT/pass.log"
: > "$LOG"
STEPFILE="$OUT/.steps"
: > "$STEPFILE"

say() { echo "$*" | tee -a "$LOG"; }
el() { say "[t+$(( $(date +%s) - START ))s] $*"; }
want() { case ",$STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# run_step NAME LIMIT LOGFILE SIGNAL GRACE CMD...: CMD under `timeout`, its output in LOGFILE,
# bounded by LIMIT seconds and by the deadline (the KILL grace is inside the limit). Records
# "NAME rc seconds limit logfile" in $STEPFILE.
run_step() {
  local name=$1 limit=$2 logf=$3 sig=$4 grace=$5; shift 5
  [ "$SMOKE" = 1 ] && limit=$SL
  local override="GPU_PASS_LIMIT_${name#bench:}"   # e.g. GPU_PASS_LIMIT_autodiff=40
  limit=${!override:-$limit}
  local now left
  now=$(date +%s); left=$((DEADLINE - now))
  [ "$left" -lt "$limit" ] && limit=$left
  # a small limit (smoke runs, the deadline near) keeps a third of it for the KILL grace
  [ $((grace * 3)) -gt "$limit" ] && grace=$((limit / 3))
  if [ "$limit" -lt 3 ]; then
    el "$name: skipped, no time left"
    echo "$name skip 0 $limit $(basename "$logf")" >> "$STEPFILE"
    return 0
  fi
  local t0=$(date +%s)
  timeout -s "$sig" -k "$grace" $((limit - grace)) "$@" > "$logf" 2>&1 < /dev/null
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  el "$name rc=$rc (${dt} s, limit ${limit} s) -> $(basename "$logf")"
  echo "$name $rc $dt $limit $(basename "$logf")" >> "$STEPFILE"
  return 0
}

say "# tessera GPU pass $(date -Iseconds) in $PWD; mode: $([ "$SMOKE" = 1 ] && echo smoke || echo full);" \
    "deadline ${TOTAL} s; steps: $STEPS; output: $OUT"

# -- 1. environment ---------------------------------------------------------------------
CUDA_OK=unknown
if want env || want tests || want bench || want demo; then
  CUDA_OK=$(timeout -k 2 40 "$PY" -c 'import tessera; print(tessera.cuda_is_available())' 2>/dev/null | tail -1)
  [ -n "$CUDA_OK" ] || CUDA_OK="probe failed"
fi
if [ "$CUDA_OK" = True ]; then
  export TESSERA_DEVICE=${TESSERA_DEVICE:-cuda}
else
  # No GPU: still check the script (the steps run on the CPU), and say so everywhere.
  export TESSERA_DEVICE=${TESSERA_DEVICE:-cpu}
  say "WARNING: tessera sees no CUDA device (cuda_is_available: $CUDA_OK); TESSERA_DEVICE=$TESSERA_DEVICE"
fi

env_probe() {
  echo "## nvidia-smi -L"; timeout -k 2 10 nvidia-smi -L 2>&1 || echo "(nvidia-smi failed or absent: rc $?)"
  echo "## nvidia-smi"; timeout -k 2 10 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap \
    --format=csv 2>&1 || true
  echo "## uname / cpus"; uname -a; nproc
  echo "## python and libraries"
  timeout -k 2 60 "$PY" - <<'EOF' 2>&1
import importlib, os, platform, sys
print("python", sys.version.split()[0], sys.executable)
for name in ("numpy", "scipy", "ml_dtypes", "cupy", "torch", "jax", "pytest", "xdist",
             "pytest_timeout", "hypothesis", "cuda.bindings"):
    try:
        m = importlib.import_module(name)
        print(f"{name:14s} {getattr(m, '__version__', '?')}")
    except Exception as e:  # noqa: BLE001
        print(f"{name:14s} absent ({type(e).__name__}: {e})")
try:
    import cupy
    print("cupy CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(), "driver",
          cupy.cuda.runtime.driverGetVersion(), "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as e:  # noqa: BLE001
    print("cupy runtime: unavailable", type(e).__name__, e)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:  # noqa: BLE001
    print("torch CUDA: unavailable", type(e).__name__, e)
import tessera
print("tessera", tessera.__version__, "cuda_is_available", tessera.cuda_is_available(),
      "default device", tessera.default_device(), "sim", os.environ.get("TESSERA_CUDA_SIM", "unset"))
EOF
  echo "## environment"
  env | grep -E '^(TESSERA_|XLA_|CUDA_|PYTHONPATH|OMP_|CUPY_)' | sort
}
export PY
export -f env_probe
if want env; then
  run_step env 15 "$OUT/env.txt" TERM 2 bash -c env_probe
  sed 's/^/  /' "$OUT/env.txt" | tee -a "$LOG"
fi

# -- 2. the whole test suite, cuda as the default device ------------------------------------
PYTEST_LINE="(tests not run)"
if want tests; then
  if [ "$SMOKE" = 1 ]; then
    TESTS=(tests/test_device.py tests/test_dtypes.py); NPROC=2
  else
    TESTS=(); NPROC=12
  fi
  PLUG=()
  if timeout -k 2 30 "$PY" -c 'import xdist' 2>/dev/null; then PLUG+=(-p xdist -n "$NPROC")
  else say "WARNING: pytest-xdist missing: the tests run in one process"; fi
  if timeout -k 2 30 "$PY" -c 'import pytest_timeout' 2>/dev/null; then PLUG+=(--timeout 120)
  else say "WARNING: pytest-timeout missing: no per-test limit (the step's limit still holds)"; fi
  # SIGINT first: pytest then stops, prints its summary and writes the junit file.
  run_step tests 230 "$OUT/tests.txt" INT 10 "$PY" -m pytest -o addopts="" -q -rfE --tb=short \
    ${PLUG[@]+"${PLUG[@]}"} --junitxml="$OUT/junit.xml" ${TESTS[@]+"${TESTS[@]}"}
  if [ -s "$OUT/tests.txt" ]; then
    PYTEST_LINE=$(grep -E '(passed|failed|error|skipped|deselected|no tests ran).* in [0-9.]+s' \
                  "$OUT/tests.txt" | tail -1)
    [ -n "$PYTEST_LINE" ] || PYTEST_LINE="(no pytest closing line; last lines: $(tail -2 "$OUT/tests.txt" | tr '\n' ' '))"
  else
    PYTEST_LINE="(no test output: the step was skipped or printed nothing)"
  fi
  say "  pytest: $PYTEST_LINE"
fi

# -- 3. the demo ----------------------------------------------------------------------------
if want demo; then
  run_step demo 30 "$OUT/demo.txt" TERM 3 "$PY" -m tessera
  tail -3 "$OUT/demo.txt" | sed 's/^/  /' | tee -a "$LOG"
fi

# -- 4. the benchmarks, most telling first ----------------------------------------------------
# "script args|limit s": limits sum to about 200 s (with env 15, tests 230, demo 30: 475 s).
BENCHES=(
  "kernels.py --quick|35"
  "dispatch.py --quick|15"
  "autodiff.py --quick|30"
  "fusion.py --quick|30"
  "precision.py --quick|15"
  "operators.py --quick|12"
  "spectral_moe.py --quick|15"
  "debugging.py --quick --no-graph-replay|12"
  "graph_replay.py --quick|8"
  "interop.py --quick|8"
  "autotune.py --quick|12"
  "fusion_codegen_smoke.py|8"
)
if want bench; then
  for entry in "${BENCHES[@]}"; do
    cmd=${entry%|*}; lim=${entry##*|}; script=${cmd%% *}; base=${script%.py}
    if [ -n "$ONLY_BENCH" ]; then
      case " $ONLY_BENCH " in *" $base "*|*" $script "*) ;; *) continue ;; esac
    fi
    if [ ! -f "benchmarks/$script" ]; then
      el "bench $base: benchmarks/$script absent, skipped"
      continue
    fi
    # shellcheck disable=SC2086 - the arguments are meant to split
    run_step "bench:$base" "$lim" "$OUT/bench-$base.txt" TERM 3 "$PY" benchmarks/$cmd
  done
  # benchmark scripts nobody listed above still get noticed
  for f in benchmarks/*.py; do
    b=$(basename "$f"); case "$b" in _*|fusion_gpu.py) continue ;; esac
    case " ${BENCHES[*]} " in *" $b "*|*" $b|"*) ;; *) el "note: benchmarks/$b is not in gpu_pass.sh's list" ;; esac
  done
fi

# -- summary ----------------------------------------------------------------------------------
{
  echo "tessera GPU pass, $(date -Iseconds), mode $([ "$SMOKE" = 1 ] && echo "smoke (tiny sizes)" || echo full)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ local changes or no git)')"
  echo "host: $(hostname 2>/dev/null || uname -n); cuda_is_available: $CUDA_OK; TESSERA_DEVICE=$TESSERA_DEVICE; TESSERA_CUDA_SIM=${TESSERA_CUDA_SIM:-unset}"
  echo "python: $(timeout -k 1 10 "$PY" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)"
  echo
  printf '%-28s %5s %8s %8s  %s\n' step rc seconds limit log
  while read -r name rc dt limit logf; do
    printf '%-28s %5s %8s %8s  %s\n' "$name" "$rc" "$dt" "$limit" "$logf"
  done < "$STEPFILE"
  echo
  echo "pytest: $PYTEST_LINE"
  echo "total: $(( $(date +%s) - START )) s of a ${TOTAL} s deadline"
  echo "rc: 0 ok; 124 hit its limit (137: killed after the grace); skip: no time left; other: failed (see its log)"
} > "$OUT/SUMMARY.txt"
rm -f "$STEPFILE"
tee -a "$LOG" < "$OUT/SUMMARY.txt"
rm -rf "$TESSERA_CACHE_DIR"
exit 0
