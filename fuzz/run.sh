#!/usr/bin/env bash
# Builds every fuzz target (build-fuzz/, clang, libFuzzer + ASan + UBSan) and
# runs each for SECONDS_PER_TARGET seconds (default 20) from its seed corpus
# under fuzz/corpus/<target>/. Prints the executions per target and fails when
# any target finds a crash, a leak, undefined behaviour or a timeout.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Results also go to $FUZZ_RESULTS (default build-fuzz/fuzz-results.json, read
# by scripts/robustness_report.py) and, as JUnit XML (one test case per
# target), to $FUZZ_JUNIT (default build-fuzz/fuzz-junit.xml).
# Crashing inputs are kept in build-fuzz/artifacts/; inputs that found new
# coverage in build-fuzz/corpus/<target>/ (the checked-in seeds stay as they are).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_PER_TARGET=${1:-20}
shift || true
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JUNIT=${FUZZ_JUNIT:-$BUILD/fuzz-junit.xml}
RESULTS=${FUZZ_RESULTS:-$BUILD/fuzz-results.json}

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang meson setup "$BUILD" -Dfuzz=true >/dev/null || { echo "fuzz: meson setup failed" >&2; exit 1; }
fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in fuzz/fuzz_*.c; do
    targets+=("$(basename "$src" .c)")
  done
fi

# Only the targets (and the code they cover), not the whole project.
ninja -C "$BUILD" "${targets[@]/#/fuzz/}" >"$BUILD/build.log" 2>&1 ||
  { tail -30 "$BUILD/build.log" >&2; echo "fuzz: build failed" >&2; exit 1; }

mkdir -p "$BUILD/artifacts" "$BUILD/logs"
results=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$BUILD/corpus/$t" "fuzz/corpus/$t"
  log="$BUILD/logs/$t.log"
  start=$(date +%s.%N)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$BUILD/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-" \
      "$BUILD/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  execs=${execs:-0}
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  seeds=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    status=ok
  else
    status=failed
    failed=$((failed + 1))
  fi
  printf '%-20s %-6s %12s executions  %4s seeds  cov %s\n' "$t" "$status" "$execs" "$seeds" "${cov:-?}"
  if [ $rc -ne 0 ]; then
    grep -E 'ERROR: |runtime error:|SUMMARY:|Test unit written' "$log" | head -8 | sed 's/^/    /'
  fi
  results+=("$t $status $execs $seeds ${cov:-0} $start $end $log")
done

/usr/bin/python3 - "$JUNIT" "$RESULTS" "$SECONDS_PER_TARGET" "${results[@]}" <<'PY'
import json, sys
import xml.etree.ElementTree as ET
junit, out, budget, *rows = sys.argv[1:]
targets = []
for row in rows:
    name, status, execs, seeds, cov, start, end, log = row.split(" ", 7)
    targets.append({"target": name, "status": status, "executions": int(execs), "seeds": int(seeds),
                    "coverage": int(cov), "seconds": round(float(end) - float(start), 1), "log": log})
with open(out, "w") as f:
    json.dump({"seconds_per_target": int(budget), "targets": targets}, f, indent=1)
suite = ET.Element("testsuite", name="fuzz", tests=str(len(targets)),
                   failures=str(sum(t["status"] != "ok" for t in targets)), errors="0", skipped="0")
for t in targets:
    case = ET.SubElement(suite, "testcase", classname="fuzz", name=t["target"], time=str(t["seconds"]))
    ET.SubElement(case, "properties").append(
        ET.Element("property", name="executions", value=str(t["executions"])))
    if t["status"] != "ok":
        with open(t["log"], errors="replace") as f:
            tail = f.read()[-4000:]
        ET.SubElement(case, "failure", message="fuzz target failed").text = tail
root = ET.Element("testsuites")
root.append(suite)
ET.ElementTree(root).write(junit, encoding="utf-8", xml_declaration=True)
PY

total=$(/usr/bin/python3 -c "import json,sys; print(sum(t['executions'] for t in json.load(open(sys.argv[1]))['targets']))" "$RESULTS")
echo "fuzz: ${#targets[@]} targets, $total executions, $failed failed"
[ $failed -eq 0 ]
