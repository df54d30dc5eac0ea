"""Adds up any number of result files into one closing line:
'N passed, N failed' (', N skipped' when some were). Exit status 1 when any
test failed or a result file is missing.

Reads meson's test logs (testlog.json, one JSON object a line), JUnit XML
(pytest, fuzz/run.sh) and fuzz/run.sh's fuzz-results.json (one result per
target)."""

import json
import sys
import xml.etree.ElementTree as ET


def meson_counts(path):
    passed = failed = skipped = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
    return passed, failed, skipped


def fuzz_counts(data):
    passed = sum(1 for t in data["targets"] if t["status"] == "ok")
    return passed, len(data["targets"]) - passed, 0


def json_counts(path):
    with open(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and "targets" in data:
        return fuzz_counts(data)
    return meson_counts(path)


def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    passed = failed = skipped = 0
    for s in suites:
        total = int(s.get("tests", 0))
        f = int(s.get("failures", 0)) + int(s.get("errors", 0))
        sk = int(s.get("skipped", 0))
        failed += f
        skipped += sk
        passed += total - f - sk
    return passed, failed, skipped


def main(paths):
    passed = failed = skipped = 0
    missing = False
    for path in paths:
        try:
            counts = json_counts(path) if path.endswith(".json") else junit_counts(path)
        except (OSError, ValueError, ET.ParseError) as e:
            print(f"summary: cannot read {path}: {e}", file=sys.stderr)
            missing = True
            failed += 1
            continue
        passed += counts[0]
        failed += counts[1]
        skipped += counts[2]
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
