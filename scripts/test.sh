#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs the C unit tests
# and the integration tests (each starts its own PostgreSQL and uuidgate
# processes), and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh || exit 1
scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }

# Load tests open hundreds of sockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p build/test-results
rm -f build/test-results/*.xml

echo "== unit tests"
meson test -C build --suite unit --print-errorlogs
unit_rc=$?

echo "== integration tests"
UUIDGATE_BUILD_DIR="$ROOT/build" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider \
  --junitxml=build/test-results/integration.xml "$@"
it_rc=$?

/usr/bin/python3 scripts/summarize.py build/meson-logs/testlog.json build/test-results/integration.xml
summary_rc=$?
[ $unit_rc -eq 0 ] && [ $it_rc -eq 0 ] && [ $summary_rc -eq 0 ]
