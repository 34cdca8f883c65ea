#!/usr/bin/env bash
# The CUDA backend's check on a GPU machine: configures build-device with the CUDA backend,
# builds every test file with a test that DEVICE_TESTS_RE below selects (tests/test_cuda_*.cpp
# and any other file with such a test: test_qat_fused, test_module, test_qat_calibration, ...)
# and every CUDA benchmark (benchmarks/bench_cuda_*.cpp), runs `ctest -R "$DEVICE_TESTS_RE"`
# (ctest names are the gtest Suite.Name: CudaQuantize.*, CudaOptim.*, ..., QatFused.* and the
# CPU-suite tests that use the real GPU when there is one, ModuleTo.* and
# Calibration.SignedFlagCache*) after one test binary run alone, the benchmarks,
# compute-sanitizer's memcheck on the handwritten kernels' tests (a minute at most), then tranq
# and PyTorch training steps, and writes ${OUT:-device-out}/summary.txt plus logs.tar.gz (the
# full logs, benchmark JSON and ctest's JUnit file; re-made after each phase). Nothing else goes
# into $OUT. RESULT: PASS needs every step to have run and exited 0: ctest without GPU skips,
# the benchmarks, memcheck (unless the machine cannot run it) and every tranq training step,
# each of which must also end in tranq bench's JSON line (parsed with python3; a
# host_waits_per_step other than 0 is a warning line, not a failure); the PyTorch steps are
# only reported.
# Meant to finish within 8 minutes on an H200 (16 cores): every step has a time limit, and a
# step is skipped ("out of time" in the summary) once the deadline is near.
#
#   scripts/device-check.sh                       # on the GPU machine, from the repo root
#   scripts/device-check.sh --stage-third-party   # on a dev machine (Debian), before carrying
#
# Dependencies: system packages are used when present. A machine without them needs the
# folder third_party/ carried along (about 15 MB), which --stage-third-party fills here:
#   third_party/sysroot/usr/...  the files of the Debian packages listed in STAGE_PACKAGES
#                                (Eigen headers + CMake config, prebuilt googletest and
#                                benchmark libraries + configs, fmt, nlohmann_json, CLI11,
#                                libjpeg, zlib), used as a CMake prefix;
#   third_party/googletest/      the googletest source (/usr/src/googletest), built into
#                                build-device/_deps when neither the system nor the sysroot
#                                has GTest.
# The benchmark library has no source package here; the sysroot carries its built files.
set -uo pipefail

STAGE_PACKAGES="libeigen3-dev libgtest-dev libbenchmark-dev libbenchmark1debian libfmt-dev libfmt9
nlohmann-json3-dev libcli11-dev libjpeg62-turbo-dev libjpeg62-turbo zlib1g-dev"

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)

if [[ "${1:-}" == "--stage-third-party" ]]; then
  set -e
  mkdir -p third_party/sysroot
  for pkg in $STAGE_PACKAGES; do
    if ! dpkg -L "$pkg" >/dev/null 2>&1; then
      echo "stage: package $pkg is not installed here; skipped" >&2
      continue
    fi
    dpkg -L "$pkg" | while read -r f; do
      case "$f" in /usr/share/doc/*|/usr/share/man/*|/usr/share/lintian/*) continue ;; esac
      if [[ -f "$f" || -L "$f" ]]; then
        mkdir -p "third_party/sysroot$(dirname "$f")"
        cp -a "$f" "third_party/sysroot$f"
      fi
    done
  done
  # Multiarch headers (jconfig.h) next to the others: a compiler searches its own multiarch
  # folder only under /usr/include, not under a prefix.
  if [[ -d third_party/sysroot/usr/include/x86_64-linux-gnu ]]; then
    cp -a third_party/sysroot/usr/include/x86_64-linux-gnu/. third_party/sysroot/usr/include/
  fi
  if [[ -d /usr/src/googletest ]]; then
    rm -rf third_party/googletest
    cp -a /usr/src/googletest third_party/googletest
  fi
  du -sh third_party
  echo "stage: carry the folder third_party/ to the GPU machine"
  exit 0
fi

OUT_DIR=${OUT:-device-out}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
SUMMARY="$OUT_DIR/summary.txt"
BUILD=build-device
# Logs go to a scratch folder; $OUT holds only summary.txt and logs.tar.gz (re-made after each
# phase): the machine sends back at most 8 files, and a kill by the outer limit must still
# leave the summary and recent logs.
LOGS="$ROOT/$BUILD/device-logs"
rm -rf "$LOGS" "$OUT_DIR/logs.tar.gz"
mkdir -p "$LOGS"
JOBS=${DEVICE_CHECK_JOBS:-16}
DEADLINE=${DEVICE_CHECK_DEADLINE:-470}  # seconds for the whole script, leaving margin under 8 min
RESERVE=15  # seconds kept back from every step for the last tar and summary
: >"$SUMMARY"

say() { echo "$*" | tee -a "$SUMMARY"; }
# Seconds a step may take: its own cap, or what is left before the deadline less RESERVE;
# 0 (skip the step) when fewer than 5 s would be left.
budget() {
  local cap=$1 left=$((DEADLINE - RESERVE - SECONDS))
  ((left < 5)) && { echo 0; return; }
  ((cap < left)) && echo "$cap" || echo "$left"
}
# step NAME CAP LOG COMMAND...: runs COMMAND within budget CAP, its output in $LOGS/LOG, and
# sets rc (124 or 137: timed out). Out of time: says so, sets rc=-1 and returns 1.
# (Never `timeout 0`: that means no limit at all.)
step() {
  local name=$1 t; t=$(budget "$2")
  local log=$3; shift 3
  if ((t == 0)); then
    say "$name: skipped, out of time"
    rc=-1
    return 1
  fi
  timeout -k 10 "$t" "$@" >"$LOGS/$log" 2>&1
  rc=$?
  ((rc == 124 || rc == 137)) && say "$name: timed out after $t s"
  return 0
}
# exit_text RC: "exit RC", with what ended the command when it was the time limit or a signal.
exit_text() {
  if (($1 == 124)); then echo "exit $1 (timed out)"
  elif (($1 == 137)); then echo "exit $1 (killed: timed out, or out of memory)"
  elif (($1 > 128)); then echo "exit $1 (signal $(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128))))"
  else echo "exit $1"
  fi
}
# logs.tar.gz from what $LOGS holds now, replaced in one move so that a kill never leaves half.
pack() {
  tar -czf "$OUT_DIR/logs.tar.gz.part" -C "$LOGS" . 2>/dev/null &&
    mv -f "$OUT_DIR/logs.tar.gz.part" "$OUT_DIR/logs.tar.gz"
}

say "== tranq device check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "repo: $ROOT ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git'); $(git status --porcelain 2>/dev/null | wc -l) changed files)"
say "gpu: $(timeout -k 10 30 nvidia-smi -L 2>&1 | head -n 4 | tr '\n' ';')"
say "driver: $(timeout -k 10 30 nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1)"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
say "nvcc: $(command -v nvcc || echo "not on PATH, trying $NVCC"): $(timeout -k 10 30 "$NVCC" --version 2>&1 | tail -n 2 | head -n 1)"
say "cmake: $(cmake --version | head -n 1); cores: $(nproc)"
say "python3 torch: $(timeout -k 10 60 python3 -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>&1 | tail -n 1)"

# ---- dependencies: system first, then the carried third_party/ ----
has_config() {  # has_config <Name> <lowercase-dir>: a CMake package config in a system prefix
  local d
  for d in /usr/lib/x86_64-linux-gnu/cmake /usr/lib/cmake /usr/share /usr/local/lib/cmake \
           /usr/local/share /usr/lib64/cmake /usr/share/cmake; do
    compgen -G "$d/$2/$1Config.cmake" >/dev/null && return 0
    compgen -G "$d/$2/cmake/$1Config.cmake" >/dev/null && return 0
    compgen -G "$d/$2/$2-config.cmake" >/dev/null && return 0
  done
  return 1
}
PREFIXES=()
SYSROOT="$ROOT/third_party/sysroot/usr"
missing=()
has_config Eigen3 eigen3 || missing+=(Eigen3)
has_config GTest GTest || missing+=(GTest)
has_config benchmark benchmark || missing+=(benchmark)
for pkg in fmt nlohmann_json CLI11; do has_config "$pkg" "$pkg" || missing+=("$pkg"); done
if ((${#missing[@]} == 0)); then
  say "deps: system packages (Eigen3, GTest, benchmark, fmt, nlohmann_json, CLI11 found)"
elif [[ -d "$SYSROOT" ]]; then
  say "deps: not in the system: ${missing[*]}; using the carried third_party/sysroot"
  PREFIXES+=("$SYSROOT")
  export LD_LIBRARY_PATH="$SYSROOT/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  say "deps: not in the system: ${missing[*]} and no third_party/sysroot carried"
fi
if [[ " ${missing[*]} " == *" GTest "* && ! -d "$SYSROOT/lib/x86_64-linux-gnu/cmake/GTest" &&
      -f third_party/googletest/CMakeLists.txt ]]; then
  say "deps: building GTest from third_party/googletest"
  GT_PREFIX="$ROOT/$BUILD/_deps/prefix"
  # shellcheck disable=SC2016  # $1..$3 expand in the inner shell
  if step "googletest build" 150 gtest-build.log bash -c \
       'cmake -S third_party/googletest -B "$1" -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_INSTALL_PREFIX="$2" -DBUILD_GMOCK=OFF && cmake --build "$1" -j"$3" &&
        cmake --install "$1"' _ "$BUILD/_deps/googletest" "$GT_PREFIX" "$JOBS" && ((rc == 0)); then
    PREFIXES+=("$GT_PREFIX")
  else
    say "deps: building googletest failed (see gtest-build.log)"
  fi
fi
# cuDNN (every CUDA convolution): CUDNN_ROOT if set, else the toolkit's, else the copy that the
# pip packages nvidia-cudnn-* (PyTorch's) put under python3's site-packages/nvidia.
CUDA_HOME_DIR=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
if [[ -n "${CUDNN_ROOT:-}" ]]; then
  say "cudnn: CUDNN_ROOT=$CUDNN_ROOT (from the environment)"
elif [[ -n "$(find "$CUDA_HOME_DIR" -maxdepth 4 -name cudnn.h 2>/dev/null | head -n 1)" ]]; then
  say "cudnn: in the toolkit ($CUDA_HOME_DIR)"
else
  for p in python3 /usr/bin/python3; do
    command -v "$p" >/dev/null || continue
    nv_dirs=$(timeout -k 10 60 "$p" -c 'import importlib.util as u; s = u.find_spec("nvidia")
print("\n".join(s.submodule_search_locations or []) if s else "")' 2>/dev/null)
    [[ -n "$nv_dirs" ]] || continue
    header=$(while read -r d; do find "$d" -maxdepth 5 -name cudnn.h 2>/dev/null; done \
               <<<"$nv_dirs" | head -n 1)
    if [[ -n "$header" ]]; then
      CUDNN_ROOT=$(dirname "$(dirname "$header")")
      export CUDNN_ROOT
      # Only cuDNN's own lib folder: the other nvidia/* folders (cuBLAS, runtime) of the pip
      # packages must not shadow the toolkit's libraries that the build links against.
      for lib in "$CUDNN_ROOT"/lib "$CUDNN_ROOT"/lib64; do
        [[ -d "$lib" ]] && export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      done
      say "cudnn: not in the toolkit; using $p's $CUDNN_ROOT ($(ls "$CUDNN_ROOT"/lib*/libcudnn.so* 2>/dev/null | head -n 1))"
      break
    fi
  done
  [[ -z "${CUDNN_ROOT:-}" ]] &&
    say "cudnn: not found (toolkit, CUDNN_ROOT, python3's nvidia packages): CUDA convolution tests skip"
fi
PREFIX_ARG=()
if ((${#PREFIXES[@]} > 0)); then
  PREFIX_ARG=("-DCMAKE_PREFIX_PATH=$(IFS=';'; echo "${PREFIXES[*]}")")
fi
pack

# ---- configure and build ----
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
say "== configure ($([[ ${#GEN[@]} -gt 0 ]] && echo Ninja || echo 'Unix Makefiles'), Release, TRANQ_CUDA=ON)"
# TRANQ_TEST_TIMEOUT: each test's ctest TIMEOUT property (ctest --timeout does not override it).
configure_rc=-1
if step configure 150 configure.log cmake -S . -B "$BUILD" ${GEN[@]+"${GEN[@]}"} \
     -DCMAKE_BUILD_TYPE=Release -DTRANQ_CUDA=ON -DTRANQ_BUILD_TESTS=ON -DTRANQ_BUILD_BENCHMARKS=ON \
     -DTRANQ_TEST_TIMEOUT=120 -DCMAKE_CUDA_COMPILER="$NVCC" ${PREFIX_ARG[@]+"${PREFIX_ARG[@]}"}; then
  configure_rc=$rc
  say "configure: exit $configure_rc"
  for v in Eigen3_DIR GTest_DIR benchmark_DIR fmt_DIR nlohmann_json_DIR CLI11_DIR CMAKE_CUDA_COMPILER \
           CMAKE_CUDA_ARCHITECTURES CUDA_cublas_LIBRARY TRANQ_CUDNN_INCLUDE_DIR TRANQ_CUDNN_LIBRARY \
           JPEG_LIBRARY_RELEASE ZLIB_LIBRARY_RELEASE TRANQ_TEST_TIMEOUT; do
    line=$(grep -E "^$v:" "$BUILD/CMakeCache.txt" 2>/dev/null | head -n 1)
    [[ -n "$line" ]] && say "  uses $line"
  done
  grep -E "tranq: CUDA backend" "$LOGS/configure.log" | tee -a "$SUMMARY"
  ((configure_rc != 0)) && tail -n 30 "$LOGS/configure.log" | tee -a "$SUMMARY"
fi
# Why the tests count as failed although ctest may pass (a GPU machine must run them all).
tests_why=()
if ((configure_rc == 0)); then
  cudnn_lib=$(grep -E "^TRANQ_CUDNN_LIBRARY:" "$BUILD/CMakeCache.txt" 2>/dev/null | head -n 1 | cut -d= -f2-)
  if [[ -z "$cudnn_lib" || "$cudnn_lib" == *NOTFOUND ]]; then
    tests_why+=("no cuDNN library in the CMake cache (TRANQ_CUDNN_LIBRARY='$cudnn_lib'): convolution tests skip")
  fi
fi

# The tests that run on the device: ctest -R "$DEVICE_TESTS_RE" (ctest names: Suite.Name) and
# the TEST lines of the target selection below (TEST(Suite, Name)) use the same pattern, so a
# name it matches is both built and run. CUDA tests belong in tests/test_cuda_*.cpp (suites
# Cuda*); a test elsewhere that uses the real GPU when there is one (use_fake_cuda_unless_real()
# without skipping, TRANQ_REQUIRE_CUDA()) needs its suite or name here: today QatFused.*,
# ModuleTo.GradientsMoveWithTheirParameters and
# Calibration.SignedFlagCacheFollowsWritesAcrossDeviceMoves.
DEVICE_TESTS_RE='[Cc]uda|QatFused|ModuleTo|SignedFlagCache'
# Every test file with a test that DEVICE_TESTS_RE selects (one target each), so that ctest runs
# all of them and finds no unbuilt *_NOT_BUILT placeholders: tests/test_cuda_*.cpp, and other
# files by their TEST lines (today test_qat_fused, test_module, test_qat_calibration and
# test_cli, Cli.DeviceCudaWithoutGpu..., which skips on a GPU machine). Plus every CUDA
# benchmark and the CLI. A file that reaches the real GPU but has no test the pattern selects is
# named in the summary (a warning): its device test would be neither built nor run. The warning
# works per file: in a selected file, a device test whose name the pattern misses is built but
# not run, unwarned; keep such tests in suites the pattern names.
TARGETS=(tranq_cli)
unselected_gpu=()
for f in tests/test_*.cpp; do
  # Lines that reach the real GPU when there is one (a skip there does the opposite). Kept in a
  # variable, not tested with grep -q at the pipe's end, whose early exit pipefail would count.
  gpu_lines=$(grep -E 'use_fake_cuda_unless_real\(\)|TRANQ_REQUIRE_CUD(A|NN)[A-Z_]*\(\)' "$f" |
                grep -v 'GTEST_SKIP')
  if [[ "$f" == tests/test_cuda_* ]] ||
     grep -qE "^(TEST|TEST_F|TEST_P|INSTANTIATE_TEST_SUITE_P)\\([^)]*($DEVICE_TESTS_RE)" "$f"; then
    TARGETS+=("$(basename "$f" .cpp)")
  elif [[ -n "$gpu_lines" ]]; then
    unselected_gpu+=("$f")
  fi
done
for f in ${unselected_gpu[@]+"${unselected_gpu[@]}"}; do
  say "warning: $f uses the real GPU when present (use_fake_cuda_unless_real() or TRANQ_REQUIRE_CUDA()) but none of its tests match DEVICE_TESTS_RE='$DEVICE_TESTS_RE': not built or run here"
done
for f in benchmarks/bench_cuda_*.cpp; do
  [[ -f "$f" ]] && TARGETS+=("$(basename "$f" .cpp)")
done
build_rc=-1
if ((configure_rc == 0)); then
  say "== build (-j$JOBS): ${TARGETS[*]}"
  if step build 300 build.log cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"; then
    build_rc=$rc
    say "build: exit $build_rc ($SECONDS s so far)"
    grep -E "warning|error" "$LOGS/build.log" | grep -v "^--" | head -n 40 | tee -a "$SUMMARY"
    ((build_rc != 0)) && tail -n 40 "$LOGS/build.log" | tee -a "$SUMMARY"
  fi
fi
pack

# ---- tests ----
# The skip messages of TRANQ_REQUIRE_CUDA / TRANQ_SKIP_WITHOUT_CUDNN (tests/cuda_test_util.h):
# on the GPU machine either one means the tests did not really run. Not the deliberate skips
# of CPU-only tests there ("a CUDA device is present").
SKIP_RE='no CUDA device|no cuDNN in this CUDA build'
# OpenMP: 2 passive threads per test process, not 16 spinning ones times 8 parallel tests.
TEST_ENV=(env OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive)
ctest_rc=-1
if ((build_rc == 0)); then
  # One test binary run directly first: ctest shows no output of skipped tests, this does.
  say "== smoke test: $BUILD/tests/test_cuda_runtime"
  if step "smoke test" 60 smoke.log "${TEST_ENV[@]}" "$BUILD/tests/test_cuda_runtime"; then
    say "smoke test: exit $rc"
    grep -E -A1 "Skipped|Failure|FAILED|PASSED" "$LOGS/smoke.log" | grep -v "^--$" | head -n 20 |
      tee -a "$SUMMARY"
    ((rc != 0)) && tests_why+=("the smoke test exited $rc")
  fi
  say "== ctest -R '$DEVICE_TESTS_RE'"
  if step ctest 200 ctest.log "${TEST_ENV[@]}" ctest --test-dir "$BUILD" -R "$DEVICE_TESTS_RE" \
       --output-on-failure --output-junit "$LOGS/ctest-junit.xml" -j8; then
    ctest_rc=$rc
    say "ctest: exit $ctest_rc ($SECONDS s so far)"
    grep -E "tests passed|tests failed|Total Test time|\*\*\*|Failed|Not Run|Skipped" \
      "$LOGS/ctest.log" | head -n 60 | tee -a "$SUMMARY"
    if ((ctest_rc != 0)); then
      grep -E "Failure|Expected|Which is|actual|differs|error" "$LOGS/ctest.log" | head -n 60 |
        tee -a "$SUMMARY"
    fi
  fi
  # A skip for want of the device or of cuDNN: the GPU was not usable, a failure here.
  reasons=$(cat "$LOGS/smoke.log" "$LOGS/ctest.log" "$LOGS/ctest-junit.xml" 2>/dev/null |
              grep -o -E "($SKIP_RE)[^<\"&]*" | sort -u | head -n 3)
  if [[ -n "$reasons" ]]; then
    tests_why+=("tests skipped for want of the GPU or cuDNN ($(grep -c '\*\*\*Skipped' "$LOGS/ctest.log" 2>/dev/null) skipped in ctest):")
    while read -r r; do tests_why+=("  $r"); done <<<"$reasons"
  fi
fi
tests_rc=$ctest_rc
if ((${#tests_why[@]} > 0)); then
  ((tests_rc == 0)) && tests_rc=1
  say "tests: FAILED:"
  for r in "${tests_why[@]}"; do say "  $r"; done
fi
pack

# ---- benchmarks ----
bench_rc=-1
if ((build_rc == 0)); then
  bench_rc=0
  for BENCH in "$BUILD"/benchmarks/bench_cuda_*; do
    [[ -x "$BENCH" ]] || continue
    name=$(basename "$BENCH")
    say "== $name"
    step "$name" 120 "$name.txt" "$BENCH" --benchmark_min_time=0.05 \
      --benchmark_out="$LOGS/$name.json" --benchmark_out_format=json || { bench_rc=-1; continue; }
    tee -a "$SUMMARY" <"$LOGS/$name.txt"
    say "$name: exit $rc"
    if grep -q "ERROR OCCURRED" "$LOGS/$name.txt"; then
      say "$name: a benchmark reported an error"
      rc=3
    fi
    ((rc != 0)) && bench_rc=$rc
  done
fi
pack

# ---- memcheck: out-of-bounds and misaligned device accesses that a parity test can miss ----
# Before the long end-to-end runs, so that they cannot starve it, but at most MEMCHECK_S in
# all: compute-sanitizer slows kernels many times over, so only the test binaries of the
# handwritten kernels, one at a time. TRANQ_CUDA_NO_CACHING=1: exact-size cudaMalloc/cudaFree
# per tensor, so that an overrun leaves its allocation instead of landing in a cached block.
MEMCHECK_S=60
# memcheck_rc: the first run's non-zero exit (9: memcheck found errors; other: a test failed
# under TRANQ_CUDA_NO_CACHING=1, or a crash), -1 when a run was skipped for the script's
# deadline or the build failed; 0 otherwise, also where memcheck is unavailable (gVisor) or
# missing, which mc_desc says. A test not started, or cut off (124/137), because the 60 s are
# spent is reported, not failed: the minute is the step's chosen cost.
memcheck_rc=-1
mc_desc=""
mc_why=()
SANITIZER=$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")
if ((build_rc == 0)) && [[ -x "$SANITIZER" ]]; then
  memcheck_rc=0
  mc_end=$((SECONDS + MEMCHECK_S))
  first=1
  for t in test_cuda_kernels test_cuda_accuracy test_cuda_optim test_cuda_trs_device \
           test_cuda_ops_norm_pool test_cuda_ops_elementwise; do
    ((mc_end - SECONDS < 10)) && { say "memcheck: its ${MEMCHECK_S} s are spent before $t"; break; }
    if ! step "memcheck $t" $((mc_end - SECONDS)) "memcheck-$t.log" "${TEST_ENV[@]}" \
         TRANQ_CUDA_NO_CACHING=1 "$SANITIZER" --tool memcheck --error-exitcode 9 "$BUILD/tests/$t"; then
      mc_why+=("$t: skipped, the script's deadline is near")
      ((memcheck_rc == 0)) && memcheck_rc=-1
      break
    fi
    # gVisor machines: compute-sanitizer refuses the device ("Device not supported", then
    # error 999): not a finding of the code, and the other runs would say the same.
    if ((first)) && grep -q -E "Device not supported|[Ee]rror 999|no CUDA device: unknown error" \
         "$LOGS/memcheck-$t.log"; then
      mc_desc="unavailable"
      say "memcheck: unavailable on this machine ($(grep -m 1 -E 'Device not supported|999|unknown error' "$LOGS/memcheck-$t.log"))"
      break
    fi
    first=0
    say "memcheck $t: exit $rc ($(grep -m 1 -E 'ERROR SUMMARY' "$LOGS/memcheck-$t.log"))"
    ((rc == 0)) && continue
    if ((rc == 124 || rc == 137)); then
      # Cut off by the shared minute (a run gets only what is left of it): as a test not
      # started, reported and not failed; a real hang also shows in the ctest run's own limits.
      mc_why+=("$t: not finished within the memcheck minute (exit $rc); reported, not failed")
      break
    fi
    ((memcheck_rc == 0)) && memcheck_rc=$rc
    if ((rc == 9)); then
      mc_why+=("$t: memcheck found errors (exit 9)")
      grep -m 12 -E "Invalid|Address|at 0x|by thread" "$LOGS/memcheck-$t.log" | tee -a "$SUMMARY"
    else
      mc_why+=("$t: $(exit_text "$rc"): a test failed or crashed under memcheck (memcheck-$t.log)")
      grep -m 12 -E "Failure|FAILED|Error|error|terminate|Segmentation|Aborted" "$LOGS/memcheck-$t.log" |
        tee -a "$SUMMARY"
    fi
  done
elif ((build_rc == 0)); then
  memcheck_rc=0
  mc_desc="no compute-sanitizer"
  say "memcheck: no compute-sanitizer ($SANITIZER)"
fi
if ((${#mc_why[@]} > 0)); then
  if ((memcheck_rc != 0)); then say "memcheck: FAILED:"; else say "memcheck: notes:"; fi
  for r in "${mc_why[@]}"; do say "  $r"; done
fi
pack

# ---- end to end: training steps of tranq and, when present, PyTorch on the same GPU ----
# e2e_rc: the first non-zero exit of a tranq run (a crash, a timeout, an op without a CUDA
# version, a non-finite loss), -1 when one was skipped for the deadline or the build failed,
# 4 for a run that exited 0 without tranq bench's JSON line as its last line (or with one that
# lacks step_ms or host_waits_per_step); it fails the check. A host_waits_per_step other than 0
# (docs/benchmarks.md: expected 0) is a warning line (e2e_warn), not a failure. The PyTorch
# runs are the comparison's peer: their exits are reported (torch_why), not judged, since a
# missing or broken PyTorch says nothing of tranq.
e2e_rc=-1
e2e_why=() torch_why=() e2e_warn=()
e2e_runs=0 torch_runs=0
# bench_json LOG: the last non-empty line of a tranq bench log, parsed as JSON: prints
# "<host_waits_per_step> <summary>" and returns 0, or prints why not and returns 1.
JSON_PY=$(command -v python3 || echo /usr/bin/python3)
bench_json() {
  [[ -x "$JSON_PY" ]] || { echo "no python3 to parse it"; return 1; }
  timeout -k 10 30 "$JSON_PY" - "$1" <<'PYEOF'
import json, sys
lines = [l for l in open(sys.argv[1], errors="replace").read().splitlines() if l.strip()]
if not lines:
    sys.exit(print("no output") or 1)
try:
    j = json.loads(lines[-1])
except ValueError:
    sys.exit(print("the last line is not JSON: " + lines[-1][:160]) or 1)
if not isinstance(j, dict) or "step_ms" not in j:
    sys.exit(print("the last line is JSON without step_ms: " + lines[-1][:160]) or 1)
if "host_waits_per_step" not in j:
    sys.exit(print("the JSON line has no host_waits_per_step (not a CUDA run?)") or 1)
keys = ["step_ms", "images_per_s", "peak_device_mb", "peak_device_reserved_mb", "loss_last"]
print(j["host_waits_per_step"], " ".join("%s=%s" % (k, j[k]) for k in keys if k in j))
PYEOF
}
if ((build_rc == 0)); then
  e2e_rc=0
  PY="" TV=0
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && timeout -k 10 60 "$p" -c "import torch" 2>/dev/null; then
      PY=$p
      # torchvision only for resnet18; the peer imports it only there.
      timeout -k 10 60 "$p" -c "import torchvision" 2>/dev/null && TV=1
      break
    fi
  done
  [[ -n "$PY" ]] && say "pytorch peer: $(command -v "$PY") (torchvision: $( ((TV)) && echo yes || echo no))"
  e2e() {  # tranq|pytorch, label, command...: output in e2e-<label>.txt
    local who=$1 label=$2; shift 2
    local log="e2e-${label// /-}.txt" why
    say "== $label"
    if step "$label" 90 "$log" "$@"; then
      tail -n 3 "$LOGS/$log" | tee -a "$SUMMARY"
      why=$(exit_text "$rc")
      say "$label: $why"
    else
      why="skipped, out of time"
    fi
    if [[ $who == tranq ]]; then
      e2e_runs=$((e2e_runs + 1))
      if ((rc == 0)); then
        local parsed waits
        if parsed=$(bench_json "$LOGS/$log"); then
          waits=${parsed%% *}
          say "$label: JSON: host_waits_per_step=$waits ${parsed#* }"
          # "0", "0.0": no wait; anything else, including a malformed value, is worth a look.
          [[ "$waits" =~ ^0(\.0*)?$ ]] ||
            e2e_warn+=("$label: host_waits_per_step=$waits (expected 0: a timed step made the host wait for the device)")
        else
          rc=4
          why="exit 0 but no tranq bench JSON line: $parsed"
          say "$label: $why"
        fi
      fi
      ((rc != 0)) && e2e_why+=("$label: $why")
      ((e2e_rc == 0 && rc != 0)) && e2e_rc=$rc
    else
      torch_runs=$((torch_runs + 1))
      ((rc != 0)) && torch_why+=("$label: $why")
    fi
    return 0
  }
  e2e tranq "tranq resnet20 b256 fp32" "$BUILD/tranq" bench --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20
  e2e tranq "tranq resnet20 b256 W2A2 sgdt" "$BUILD/tranq" bench --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20 --wbits 2 --optimizer sgdt
  e2e tranq "tranq resnet20 b256 W2A2 sgd" "$BUILD/tranq" bench --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20 --wbits 2 --optimizer sgd
  e2e tranq "tranq resnet20 b256 bf16" "$BUILD/tranq" bench --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20 --precision bf16
  e2e tranq "tranq resnet20 b256 W2A2 sgdt bf16" "$BUILD/tranq" bench --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20 --wbits 2 --optimizer sgdt --precision bf16
  e2e tranq "tranq resnet18 b256 fp32" "$BUILD/tranq" bench --device cuda --model resnet18 --input 3x224x224 --batch-size 256 --iters 10 --classes 1000
  e2e tranq "tranq resnet18 b256 bf16" "$BUILD/tranq" bench --device cuda --model resnet18 --input 3x224x224 --batch-size 256 --iters 10 --classes 1000 --precision bf16
  e2e tranq "tranq resnet18 b256 fp32 tf32" "$BUILD/tranq" bench --device cuda --model resnet18 --input 3x224x224 --batch-size 256 --iters 10 --classes 1000 --tf32
  pack
  if [[ -n "$PY" ]]; then
    e2e pytorch "pytorch resnet20 b256 fp32" "$PY" benchmarks/torch_resnet20_step.py --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20
    e2e pytorch "pytorch resnet20 b256 bf16" "$PY" benchmarks/torch_resnet20_step.py --device cuda --model resnet20 --input 3x32x32 --batch-size 256 --iters 20 --precision bf16
    if ((TV)); then
      e2e pytorch "pytorch resnet18 b256 fp32" "$PY" benchmarks/torch_resnet20_step.py --device cuda --model resnet18 --input 3x224x224 --batch-size 256 --iters 10 --classes 1000
      e2e pytorch "pytorch resnet18 b256 bf16" "$PY" benchmarks/torch_resnet20_step.py --device cuda --model resnet18 --input 3x224x224 --batch-size 256 --iters 10 --classes 1000 --precision bf16
      e2e pytorch "pytorch resnet18 b256 fp32 tf32" "$PY" benchmarks/torch_resnet20_step.py --device cuda --model resnet18 --input 3x224x224 --batch-size 256 --iters 10 --classes 1000 --tf32 on
    else
      say "no torchvision: no PyTorch resnet18 comparison"
    fi
  else
    say "no python with torch: no PyTorch comparison"
  fi
  if ((${#e2e_why[@]} > 0)); then
    say "e2e: FAILED: ${#e2e_why[@]} of $e2e_runs tranq runs exited non-zero, did not run or printed no JSON line:"
    for r in "${e2e_why[@]}"; do say "  $r"; done
  else
    say "e2e: all $e2e_runs tranq runs exit 0 with their JSON line"
  fi
  for r in ${e2e_warn[@]+"${e2e_warn[@]}"}; do say "e2e: warning: $r"; done
  if ((${#torch_why[@]} > 0)); then
    say "pytorch peer: ${#torch_why[@]} of $torch_runs runs exited non-zero or did not run (reported, not judged: the RESULT does not count them):"
    for r in "${torch_why[@]}"; do say "  $r"; done
  elif ((torch_runs > 0)); then
    say "pytorch peer: all $torch_runs runs exit 0"
  fi
  pack
fi

status=PASS
((configure_rc != 0 || build_rc != 0 || tests_rc != 0 || bench_rc != 0 || memcheck_rc != 0 ||
  e2e_rc != 0)) && status=FAIL
say "== RESULT: $status (configure $configure_rc, build $build_rc, tests $tests_rc (ctest $ctest_rc), bench $bench_rc, memcheck $memcheck_rc${mc_desc:+ ($mc_desc)}, e2e $e2e_rc$( ((${#e2e_warn[@]} > 0)) && echo " with ${#e2e_warn[@]} warnings (host waits)"); -1: not run$( ((torch_runs > 0)) && echo "; pytorch peer, not judged: ${#torch_why[@]} of $torch_runs failed"); ${SECONDS} s)"
# $OUT holds two files in the end, summary.txt and logs.tar.gz (the full logs, the benchmark
# JSON, ctest's JUnit file): a machine lent for the check may send back only a few files.
cp "$SUMMARY" "$LOGS/summary.txt"
pack
[[ $status == PASS ]]
