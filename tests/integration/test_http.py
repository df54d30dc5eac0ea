"""The HTTP endpoints while a migration runs and after: /livez, /readyz,
/status (JSON) and /metrics, read with the Prometheus client's own parser."""

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gate_helpers import (BackgroundClient, TableLock, gate_settings, http_get, raw_login_error,
                          status, v39_copy, wait_held, wait_lock_wait, wait_open)
from migrate_helpers import existing_tables

GATE_STATES = ("connecting", "migrating", "ready", "failed", "not_applicable")


def metrics(gate):
    """{(sample name, frozenset of labels): value} and {family name: type}."""
    code, ctype, body = http_get(gate, "/metrics")
    assert code == 200, body
    assert ctype.startswith("text/plain"), ctype
    samples, types = {}, {}
    for family in text_string_to_metric_families(body):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def sample(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def migrating(pg, uuidgate_factory):
    """A uuidgate whose migration waits on a table lock; release() lets it finish."""
    db = v39_copy(pg, "http_gate")
    lock = TableLock(db)
    gate = uuidgate_factory(gate_settings(), upstream=db)
    wait_lock_wait(gate)
    gate.db = db
    gate.release = lock.release
    yield gate
    lock.release()


def test_livez_and_readyz_follow_the_gate(migrating):
    gate = migrating
    code, _, body = http_get(gate, "/livez")
    assert (code, body) == (200, "ok\n")
    code, _, body = http_get(gate, "/healthz")
    assert code == 200
    code, ctype, body = http_get(gate, "/readyz")
    assert code == 503, body
    assert ctype.startswith("text/plain")
    assert body.startswith("not ready: phoenix_kit V40 migration in progress:"), body
    code, _, _ = http_get(gate, "/livez", method="HEAD")
    assert code == 200

    gate.release()
    wait_open(gate)
    code, _, body = http_get(gate, "/readyz")
    assert code == 200, body
    assert body.startswith("ready: gate open (ready)"), body
    assert http_get(gate, "/livez")[0] == 200


def test_status_json_during_and_after_the_migration(migrating):
    gate = migrating
    client = BackgroundClient(gate.conninfo(dbname="http_gate"))
    st = wait_held(gate)
    assert st["version"]
    g, m, c = st["gate"], st["migration"], st["clients"]
    assert g["state"] == "migrating" and g["open"] is False and g["open_after_ms"] == -1
    assert g["description"].startswith("phoenix_kit V40 migration in progress:")
    assert m["phase"] == "migrating"
    assert m["version_before"] == 39
    tables = len(existing_tables(gate.db))
    assert m["tables_total"] == tables
    assert 0 < m["tables_done"] < tables
    assert m["current_table"] == "phoenix_kit_entities"
    assert m["lock_retries"] > 0
    assert 0 < m["rows_done"] <= m["rows_total"]
    assert m["leader"]["pid"] > 0
    assert m["leader"]["application_name"] == "uuidgate-migrate"
    assert m["error"] == ""
    assert c["held"] == 1 and c["active"] == 0
    assert st["shutting_down"] is False

    gate.release()
    st = wait_open(gate)
    assert client.result().error is None, client.error
    g, m = st["gate"], st["migration"]
    assert g["state"] == "ready" and g["open"] is True and g["open_after_ms"] >= 0
    assert m["phase"] == "finished" and m["result"] == "done"
    assert m["tables_done"] == m["tables_total"] == tables
    assert m["rows_done"] == m["rows_total"] > 0
    assert m["message"] == "migrated to version 40"


def test_status_description_of_an_open_gate_says_it_is_complete(migrating):
    migrating.release()
    st = wait_open(migrating)
    assert "in progress" not in st["gate"]["description"], st["gate"]


def test_metrics_parse_and_follow_the_gate(migrating):
    gate = migrating
    client = BackgroundClient(gate.conninfo(dbname="http_gate"))
    wait_held(gate)
    samples, types = metrics(gate)
    for st in GATE_STATES:
        assert sample(samples, "uuidgate_gate_state", state=st) == (1 if st == "migrating" else 0)
    assert sample(samples, "uuidgate_gate_open") == 0
    assert sample(samples, "uuidgate_gate_open_seconds") == -1
    assert sample(samples, "uuidgate_clients_held") == 1
    assert sample(samples, "uuidgate_client_connections", state="gate") == 1
    done = sample(samples, "uuidgate_migration_rows_done")
    total = sample(samples, "uuidgate_migration_rows_total")
    assert 0 < done <= total
    assert sample(samples, "uuidgate_migration_table_in_progress", table="phoenix_kit_entities") == 1
    assert sample(samples, "uuidgate_migration_lock_retries_total") > 0
    assert sample(samples, "uuidgate_build_info", version=status(gate)["version"]) == 1
    assert types["uuidgate_gate_state"] == "gauge"
    assert types["uuidgate_relayed_bytes"] == "counter"
    assert types["uuidgate_errors"] == "counter"

    gate.release()
    wait_open(gate)
    assert client.result().error is None, client.error
    with psycopg.connect(gate.conninfo(dbname="http_gate"), connect_timeout=10) as conn:
        conn.execute("SELECT count(*) FROM public.phoenix_kit_users").fetchone()
        samples, _ = metrics(gate)
        assert sample(samples, "uuidgate_client_connections", state="active") == 1
    samples, _ = metrics(gate)
    assert sample(samples, "uuidgate_gate_state", state="ready") == 1
    assert sample(samples, "uuidgate_gate_state", state="migrating") == 0
    assert sample(samples, "uuidgate_gate_open") == 1
    assert sample(samples, "uuidgate_gate_open_seconds") >= 0
    assert sample(samples, "uuidgate_clients_held") == 0
    assert sample(samples, "uuidgate_migration_rows_done") == sample(samples, "uuidgate_migration_rows_total")
    assert sample(samples, "uuidgate_relayed_bytes_total", direction="client_to_server") > 0
    assert sample(samples, "uuidgate_relayed_bytes_total", direction="server_to_client") > 0
    assert sample(samples, "uuidgate_logins_total") >= 2


def test_metrics_count_refusals_by_sqlstate(pg, uuidgate_factory):
    db = v39_copy(pg, "http_refuse")
    with TableLock(db):
        gate = uuidgate_factory(gate_settings(gate_mode="refuse"), upstream=db)
        wait_lock_wait(gate)
        for _ in range(2):
            assert raw_login_error(gate, "http_refuse")["C"] == "57P03"
        samples, _ = metrics(gate)
        assert sample(samples, "uuidgate_errors_total", sqlstate="57P03") == 2
    wait_open(gate)


def test_unknown_paths_and_methods(migrating):
    code, _, body = http_get(migrating, "/nope")
    assert code == 404 and "/readyz" in body
    code, _, _ = http_get(migrating, "/status", method="POST")
    assert code == 405
