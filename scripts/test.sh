#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs the C unit tests
# and the integration tests (each starts its own PostgreSQL and uuidgate
# processes); then the same again on an AddressSanitizer + UBSan build
# (build-asan/, leak detection on; the load tests are left out of that pass:
# they bound uuidgate's RSS, which the sanitizers' shadow memory and
# quarantine make meaningless), then every fuzz target for a few seconds. Ends with one line "N passed, N failed" over all of them.
#
# UUIDGATE_SKIP_ASAN=1 or UUIDGATE_SKIP_FUZZ=1 leave a pass out;
# UUIDGATE_FUZZ_SECONDS sets the seconds per fuzz target (default 8).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh || exit 1
scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }

# A test that hangs fails after this many seconds instead of stalling the run.
TEST_TIMEOUT=${UUIDGATE_TEST_TIMEOUT:-300}

# Load tests open hundreds of sockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p build/test-results
rm -f build/test-results/*.xml build/test-results/*.json
results=(build/meson-logs/testlog.json build/test-results/integration.xml)
rc=0

echo "== unit tests"
meson test -C build --suite unit --print-errorlogs || rc=1

echo "== integration tests"
UUIDGATE_BUILD_DIR="$ROOT/build" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider \
  --timeout="$TEST_TIMEOUT" -o junit_family=xunit1 --junitxml=build/test-results/integration.xml "$@" || rc=1

if [ "${UUIDGATE_SKIP_ASAN:-0}" != 1 ]; then
  echo "== AddressSanitizer + UBSan build (build-asan)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  if BUILD_DIR=build-asan scripts/build.sh -Db_sanitize=address,undefined -Db_lundef=false; then
    echo "== unit tests (ASan + UBSan)"
    meson test -C build-asan --suite unit --print-errorlogs || rc=1
    cp build-asan/meson-logs/testlog.json build/test-results/unit-asan.json
    echo "== integration tests (ASan + UBSan, all but the load tests)"
    UUIDGATE_BUILD_DIR="$ROOT/build-asan" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider \
      --ignore=tests/integration/test_load.py --timeout="$TEST_TIMEOUT" -o junit_family=xunit1 --junitxml=build/test-results/integration-asan.xml "$@" || rc=1
    results+=(build/test-results/unit-asan.json build/test-results/integration-asan.xml)
  else
    echo "build-asan: build failed" >&2
    results+=(build/test-results/unit-asan.json)
    rc=1
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ "${UUIDGATE_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz targets (${UUIDGATE_FUZZ_SECONDS:-8} s each)"
  FUZZ_JUNIT=build/test-results/fuzz.xml fuzz/run.sh "${UUIDGATE_FUZZ_SECONDS:-8}" || rc=1
  results+=(build/test-results/fuzz.xml)
fi

# The robustness table for this run (docs/robustness.md is made the same way).
/usr/bin/python3 scripts/robustness_report.py --out build/test-results/robustness.md \
  --fuzz build-fuzz/fuzz-results.json >/dev/null 2>&1 || true

/usr/bin/python3 scripts/summarize.py "${results[@]}" || rc=1
exit $rc
