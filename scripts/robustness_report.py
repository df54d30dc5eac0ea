#!/usr/bin/python3
"""Writes docs/robustness.md: what was tried against uuidgate (fuzzing,
hostile clients, faults, load, security defaults) and how each came out,
from the results of the last scripts/test.sh run.

    scripts/test.sh
    FUZZ_RESULTS=build-fuzz/fuzz-results-60s.json fuzz/run.sh 60   # a longer fuzz run
    scripts/robustness_report.py --fuzz build-fuzz/fuzz-results-60s.json

    scripts/robustness_report.py [--out docs/robustness.md]
        [--junit build/test-results/integration.xml]
        [--asan-junit build/test-results/integration-asan.xml]
        [--fuzz build-fuzz/fuzz-results.json]

Figures (RSS, latency, kill points) come from the tests' JUnit properties."""

import argparse
import datetime
import json
import os
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECTIONS = [
    ("test_hostile", "Hostile clients and security defaults",
     "Each case must end in a clear ErrorResponse or a clean close, and an ordinary client must be "
     "served afterwards (`tests/integration/test_hostile.py`)."),
    ("test_faults", "Faults",
     "The affected client gets an error, never a hang or a wrong answer; new clients are served; "
     "a migration killed at random points ends in V40's exact end state "
     "(`tests/integration/test_faults.py`)."),
    ("test_load", "Load",
     "No client error; RSS and file descriptors back near idle after the clients leave; latency "
     "printed, not asserted (`tests/integration/test_load.py`, marked slow)."),
]

FUZZ_INPUTS = {
    "fuzz_startup": "SSLRequest, GSSENCRequest, CancelRequest, StartupMessage",
    "fuzz_framing": "byte streams in random chunks through pgmsg_header, relay_forward, relay_peek_message",
    "fuzz_errorfields": "ErrorResponse / NoticeResponse bodies",
    "fuzz_sasl": "AuthenticationSASL mechanism lists, SASLInitialResponse",
    "fuzz_config": "configuration files (by path), durations, timestamps",
    "fuzz_stmtmap": "random client/server event sequences for the statement map",
    "fuzz_rewrite": "SQL texts for the INSERT rewriter",
    "fuzz_scram_server": "SCRAM client-first / client-final",
    "fuzz_scram_client": "SCRAM server-first / server-final",
    "fuzz_scram_secret": "stored SCRAM secrets, SASLprep",
    "fuzz_authfile": "auth_file contents",
    "fuzz_authmsg": "authentication message bodies",
}


# Reviewed by reading the code; kept here so that the report says it every time.
SQL_REVIEW = [
    ("login probe in the client's session (`proxy/rwsess.c`)",
     "`SELECT pg_catalog.current_schemas(true)::pg_catalog.text`: function and type qualified, no "
     "parameters needed; a shadowing function in a user schema listed before pg_catalog does not "
     "change it (tested)"),
    ("migrated-table lookup (`proxy/uuidtables.c`)",
     "own connection; every relation, type, function and operator qualified (`OPERATOR(pg_catalog.=)`), "
     "schema and table list passed as parameters. The connection keeps the role's search_path; before "
     "the fix an `=` in a schema listed before pg_catalog took over the comparisons (tested)"),
    ("auth_query (`proxy/client_login.c`)",
     "the operator's own query, run as auth_user on an own connection; the user name is a parameter"),
    ("migration engine (`migrate/`)",
     "every connection first sets `search_path = pg_catalog` (`migrate/db.c`), so unqualified catalog "
     "names and operators resolve there; identifiers are quoted (PQescapeIdentifier / quote_ident), "
     "values are parameters; the only text spliced in is integers (timeouts, batch sizes) and a "
     "column default read back from the catalog for `down`"),
]


# Bugs the tests and fuzzers found, and what became of them.
BUGS_FOUND = [
    ("A cancel request still on its way to a stalled server when uuidgate exits leaked the request, "
     "its stream and its pending connect (LeakSanitizer, found by the ASan pass of "
     "`test_proxy_cancel.py`; made deterministic by `test_faults.py::test_cancel_in_flight_when_the_proxy_stops`)",
     "fixed: in-flight cancels are tracked and freed at exit (`proxy/cancel.c`)"),
    ("No warning for a TLS private key file readable by other users (there is one for `auth_file`)",
     "fixed: `tls_key_permissions` warning for `client_tls_key_file` and the upstream `sslkey` (`proxy/tls.c`)"),
    ("uuidgate's own migrated-table lookup runs under the role's or database's search_path; a schema "
     "listed before pg_catalog could supply an `=` for (name, text) that is always true, and every table "
     "with a uuid column looked migrated (`test_hostile.py::"
     "test_table_lookup_ignores_operators_shadowed_by_the_roles_search_path`)",
     "fixed: every operator in the query is `OPERATOR(pg_catalog.=)` (`proxy/uuidtables.c`)"),
]


def suite_seconds(path):
    if not path or not os.path.exists(path):
        return 0.0
    return sum(float(s.get("time", 0) or 0) for s in ET.parse(path).getroot().iter("testsuite"))


def read_junit(path):
    """{(module, name): {"result", "time", "figures", "message"}}"""
    if not path or not os.path.exists(path):
        return {}
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        result = "passed"
        message = ""
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                result = "FAILED" if tag == "failure" else "ERROR"
                message = (el.get("message") or "").splitlines()[0][:160] if el.get("message") else ""
        sk = case.find("skipped")
        if sk is not None:
            kind = sk.get("type", "")
            result = "xfail" if "xfail" in kind or "xfail" in (sk.get("message") or "") else "skipped"
            message = (sk.get("message") or "")[:160]
        figures = [p.get("value") for p in case.iter("property") if p.get("name") == "figure"]
        out[(module, case.get("name"))] = {"result": result, "time": float(case.get("time", 0) or 0),
                                           "figures": figures, "message": message}
    return out


def describe(name):
    """A test function's name as a sentence: test_bad_length_after_login[Q-0]
    -> 'bad length after login [Q-0]' (the parameters as pytest names them)."""
    base, _, params = name.partition("[")
    text = base.removeprefix("test_").replace("_", " ")
    if params:
        text += " `[" + params
        text += "`"
    return text


def md_escape(s):
    return s.replace("|", "\\|")


def section(lines, title, intro, cases, asan):
    lines += [f"## {title}", "", intro, ""]
    if not cases:
        lines += ["Not run in the results read.", ""]
        return
    lines += ["| what was tried | result | ASan + UBSan | figures |", "|---|---|---|---|"]
    for (module, name), c in sorted(cases.items(), key=lambda kv: kv[0][1]):
        a = asan.get((module, name))
        asan_result = a["result"] if a else "not run (slow)" if c["result"] != "skipped" else "-"
        result = c["result"] + (f": {c['message']}" if c["message"] and c["result"] != "passed" else "")
        lines.append(f"| {md_escape(describe(name))} | {md_escape(result)} | {asan_result} | "
                     f"{md_escape('; '.join(c['figures']))} |")
    lines.append("")


def counts(cases):
    n = {"passed": 0, "failed": 0, "other": 0}
    for c in cases.values():
        if c["result"] == "passed":
            n["passed"] += 1
        elif c["result"] in ("FAILED", "ERROR"):
            n["failed"] += 1
        else:
            n["other"] += 1
    return n


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "robustness.md"))
    ap.add_argument("--junit", default=os.path.join(ROOT, "build", "test-results", "integration.xml"))
    ap.add_argument("--asan-junit", default=os.path.join(ROOT, "build", "test-results", "integration-asan.xml"))
    ap.add_argument("--fuzz", default=os.path.join(ROOT, "build-fuzz", "fuzz-results.json"))
    args = ap.parse_args(argv)

    normal = read_junit(args.junit)
    asan = read_junit(args.asan_junit)
    fuzz = None
    if os.path.exists(args.fuzz):
        with open(args.fuzz) as f:
            fuzz = json.load(f)

    lines = ["# Robustness", "",
             "What was tried against uuidgate to show that hostile input, faults and load lose nothing "
             "and let nobody in, and how each came out. Generated by `scripts/robustness_report.py` from "
             "the last `scripts/test.sh` run (JUnit XML of the integration tests, normal and ASan + UBSan "
             "builds, and `fuzz/run.sh`'s results); do not edit by hand.", "",
             f"Generated {datetime.date.today().isoformat()}.", ""]

    n, a = counts(normal), counts(asan)
    lines += ["## Summary", "",
              "| pass | passed | failed | xfail / skipped | minutes |", "|---|---|---|---|---|",
              f"| integration tests (build/) | {n['passed']} | {n['failed']} | {n['other']} | "
              f"{suite_seconds(args.junit) / 60:.1f} |",
              f"| integration tests on ASan + UBSan (build-asan/, leak detection on, all but the load tests) | "
              f"{a['passed']} | {a['failed']} | {a['other']} | {suite_seconds(args.asan_junit) / 60:.1f} |"]
    if fuzz:
        total = sum(t["executions"] for t in fuzz["targets"])
        bad = sum(t["status"] != "ok" for t in fuzz["targets"])
        minutes = sum(t["seconds"] for t in fuzz["targets"]) / 60
        lines.append(f"| fuzz targets ({fuzz['seconds_per_target']} s each) | "
                     f"{len(fuzz['targets']) - bad} | {bad} | - | {minutes:.1f} |")
        lines.append("")
        lines.append(f"{total:,} fuzz executions in all.")
    failures = [(label, k, c) for label, results in (("build/", normal), ("build-asan/", asan))
                for k, c in sorted(results.items()) if c["result"] in ("FAILED", "ERROR")]
    if failures:
        lines += ["", "Failures in this run:", ""]
        lines += [f"- {label} `{module}::{name}`: {md_escape(c['message'] or c['result'])}"
                  for label, (module, name), c in failures]
    lines += ["",
              "Every uuidgate the integration tests start has its log checked after each test for "
              "`ERROR: AddressSanitizer`, `runtime error:` and `LeakSanitizer`; a report fails the test.", ""]

    lines += ["## Bugs found", "", "| bug | outcome |", "|---|---|"]
    lines += [f"| {bug} | {outcome} |" for bug, outcome in BUGS_FOUND]
    lines.append("")

    if fuzz:
        lines += ["## Fuzzing", "",
                  "libFuzzer (clang 14) with ASan and UBSan, leak detection on; seeds from recorded psql, "
                  "pgbench and psycopg sessions (`fuzz/make_corpus.py`) plus hand-written ones.", "",
                  "| target | input | executions | seeds | coverage (edges) | result |",
                  "|---|---|---|---|---|---|"]
        for t in fuzz["targets"]:
            lines.append(f"| `{t['target']}` | {FUZZ_INPUTS.get(t['target'], '')} | {t['executions']:,} | "
                         f"{t['seeds']} | {t['coverage']} | {'no crash, leak or UB' if t['status'] == 'ok' else 'FAILED'} |")
        lines.append("")

    for module, title, intro in SECTIONS:
        cases = {k: v for k, v in normal.items() if k[0] == module}
        section(lines, title, intro, cases, asan)

    lines += ["## uuidgate's own SQL", "",
              "Whether anything a client or a database user controls can change what uuidgate's own "
              "queries do.", "", "| query | finding |", "|---|---|"]
    lines += [f"| {what} | {finding} |" for what, finding in SQL_REVIEW]
    lines.append("")

    with open(args.out, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
