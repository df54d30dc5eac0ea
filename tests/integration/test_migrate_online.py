"""The migration while things happen: kills, signals, concurrent runners, an
application reading and writing, long transactions in the way."""

import json
import random
import signal
import threading
import time

import psycopg

from migrate_helpers import (assert_end_state, assert_no_runner_left, data_digest, query,
                             read_log, run_migrate, start_migrate, v39_db, version_marker,
                             wait_for_log)

TEMPLATES = "phoenix_kit_email_templates"
# Small batches, paused: the migration lasts long enough to be interrupted.
SLOW = ["--batch-time", "3", "--batch-pause", "10", "--progress-interval", "300"]


def template_uuids(db):
    return dict(query(db, f"SELECT id, uuid FROM {TEMPLATES} WHERE uuid IS NOT NULL"))


def test_kill9_at_several_points_then_resume(pg, tmp_path):
    db = v39_db(pg, "mig_kill", scale=2)
    before = data_digest(db)
    kept = template_uuids(db)
    points = [
        ("phoenix_kit_users: backfilling", 0.05),
        ("phoenix_kit_users_tokens: build the unique index", 0),
        ("phoenix_kit_email_logs: backfilling", 0.1),
        ("phoenix_kit_email_events: add CHECK", 0),
        ("phoenix_kit_email_templates: mark the existing column", 0),
        ("phoenix_kit_entity_data: validate the check", 0),
        ("phoenix_kit_audit_logs: backfilling", 0.1),
    ]
    for i, (needle, extra) in enumerate(points):
        p = start_migrate(db, "up", *SLOW, logfile=str(tmp_path / f"run{i}.log"))
        wait_for_log(p, needle)
        time.sleep(extra)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert version_marker(db) == "39"
    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)
    assert data_digest(db) == before
    assert all(template_uuids(db)[k] == v for k, v in kept.items())
    assert_no_runner_left(db)


def test_kill9_during_down_then_resume(pg, tmp_path):
    db = v39_db(pg, "mig_killdown")
    assert run_migrate(db, "up").returncode == 0
    kept = template_uuids(db)
    # The second kill lands after the pre-existing column was put back: the
    # resumed down must still tell it from PhoenixKit's unmarked columns.
    for i, (needle, extra) in enumerate([("phoenix_kit_ai_requests: drop the", 0),
                                         ("phoenix_kit_email_templates: restore", 0.002)]):
        p = start_migrate(db, "down", logfile=str(tmp_path / f"down{i}.log"))
        # The first kill may land late: then the second run has less to do.
        wait_for_log(p, needle, may_finish=True)
        time.sleep(extra)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert version_marker(db) == "39"
    r = run_migrate(db, "down")
    assert r.returncode in (0, 3), r.stderr  # 3: the killed run had already finished
    assert query(db, "SELECT count(*) FROM pg_attribute WHERE attname = 'uuid' AND attrelid IN"
                     " (SELECT oid FROM pg_class WHERE relname LIKE 'phoenix_kit_%' AND relkind = 'r')"
                     " AND NOT attisdropped")[0][0] == 1
    assert template_uuids(db) == kept
    assert run_migrate(db, "down").returncode == 3


def test_sigterm_stops_at_a_safe_point(pg, tmp_path):
    db = v39_db(pg, "mig_term", scale=2)
    p = start_migrate(db, "up", *SLOW, logfile=str(tmp_path / "term.log"))
    wait_for_log(p, "phoenix_kit_email_logs: backfilling")
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 1
    assert "stopped" in read_log(p)
    assert_no_runner_left(db)
    assert version_marker(db) == "39"
    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)


def test_three_runners_one_dies(pg, tmp_path):
    db = v39_db(pg, "mig_three", scale=2)
    before = data_digest(db)
    procs = [start_migrate(db, "up", *SLOW, logfile=str(tmp_path / f"r{i}.log")) for i in range(3)]
    deadline = time.monotonic() + 30
    leader = None
    while leader is None and time.monotonic() < deadline:
        for p in procs:
            if "holding the migration lock" in read_log(p):
                leader = p
        time.sleep(0.02)
    assert leader is not None
    wait_for_log(leader, "phoenix_kit_email_logs: backfilling")
    others = [p for p in procs if p is not leader]
    for p in others:
        log = wait_for_log(p, "waiting: another runner holds the migration lock")
        assert "uuidgate-migrate" in log
    status = json.loads(run_migrate(db, "status", "--json").stdout)
    assert status["runner"] is not None
    states = {t["name"]: t["state"] for t in status["tables"]}
    assert states["phoenix_kit_users"] == "done"
    assert states["phoenix_kit_email_logs"] in ("added", "backfilling", "backfilled")

    leader.send_signal(signal.SIGKILL)
    leader.wait()
    for p in others:
        assert p.wait(timeout=120) == 0, read_log(p)
    took_over = [p for p in others if "holding the migration lock" in read_log(p)]
    assert len(took_over) == 2  # one resumed the work, the other verified it after
    assert_end_state(db)
    assert data_digest(db) == before
    assert_no_runner_left(db)


class Writer(threading.Thread):
    """An application: inserts users, their email logs and events (child
    tables of tables being backfilled), updates existing rows, reads by id."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.errors = []
        self.inserted = []
        self.updated = {}
        self.ops = 0

    def step(self, conn, n, rng):
        with conn.transaction():
            uid = conn.execute(
                "INSERT INTO phoenix_kit_users (email, hashed_password, inserted_at, updated_at)"
                " VALUES (%s, 'x', now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc') RETURNING id",
                [f"writer{n}@example.com"]).fetchone()[0]
            log_id = conn.execute(
                "INSERT INTO phoenix_kit_email_logs (user_id, message_id, \"to\", \"from\", inserted_at,"
                " updated_at) VALUES (%s, %s, 'a@example.com', 'b@example.com',"
                " now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc') RETURNING id",
                [uid, f"w-{n}"]).fetchone()[0]
            conn.execute(
                "INSERT INTO phoenix_kit_email_events (email_log_id, event_type, occurred_at, inserted_at,"
                " updated_at) VALUES (%s, 'open', now(), now(), now())", [log_id])
        self.inserted.append((uid, log_id))
        target = rng.randint(1, 2000)
        conn.execute("UPDATE phoenix_kit_email_logs SET subject = %s WHERE id = %s",
                     [f"edited {n}", target])
        self.updated[target] = f"edited {n}"
        conn.execute("UPDATE phoenix_kit_users SET last_name = %s WHERE id = %s",
                     [f"L{n}", rng.randint(1, 400)])
        # Named columns, as Ecto sends them: a prepared SELECT * would fail with
        # "cached plan must not change result type" once the column appears.
        conn.execute("SELECT id, action, inserted_at FROM phoenix_kit_audit_logs WHERE id = %s",
                     [rng.randint(1, 2000)])

    def run(self):
        rng = random.Random(7)
        with psycopg.connect(self.db, autocommit=True, application_name="app-writer") as conn:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    self.step(conn, n, rng)
                    self.ops += 1
                except Exception as e:  # every error counts against the migration
                    self.errors.append(repr(e))
                    return


def test_concurrent_writer_loses_nothing(pg, tmp_path):
    db = v39_db(pg, "mig_writer", scale=2)
    w = Writer(db)
    w.start()
    time.sleep(0.3)
    p = start_migrate(db, "up", *SLOW, "--workers", "2", logfile=str(tmp_path / "w.log"))
    assert p.wait(timeout=180) == 0, read_log(p)
    time.sleep(0.3)
    w.stop.set()
    w.join()
    assert w.errors == []
    assert w.ops > 0
    users = {r[0] for r in query(db, "SELECT id FROM phoenix_kit_users")}
    logs = {r[0] for r in query(db, "SELECT id FROM phoenix_kit_email_logs")}
    assert all(u in users and lg in logs for u, lg in w.inserted)
    subjects = dict(query(db, "SELECT id, subject FROM phoenix_kit_email_logs WHERE id = ANY(%s)",
                          [list(w.updated)]))
    assert subjects == w.updated
    assert_end_state(db)


def test_long_transaction_makes_it_wait_not_block(pg, tmp_path):
    db = v39_db(pg, "mig_longtx")
    holder = psycopg.connect(db, application_name="long-report")
    holder.execute("SELECT count(*) FROM phoenix_kit_currencies")  # ACCESS SHARE, kept open
    try:
        p = start_migrate(db, "up", "--progress-interval", "300", logfile=str(tmp_path / "l.log"))
        log = wait_for_log(p, "blocked by: pid")
        assert "long-report" in log
        # The application keeps using the table while uuidgate retries.
        with psycopg.connect(db, autocommit=True) as app:
            app.execute("SET statement_timeout = '10s'")
            for i in range(20):
                app.execute("SELECT * FROM phoenix_kit_currencies WHERE id = 1").fetchall()
                app.execute("UPDATE phoenix_kit_currencies SET exchange_rate = %s WHERE id = 2", [i])
                time.sleep(0.02)
        assert p.poll() is None
    finally:
        holder.rollback()
        holder.close()
    assert p.wait(timeout=60) == 0, read_log(p)
    assert_end_state(db)


def test_old_transaction_delays_index_build(pg, tmp_path):
    db = v39_db(pg, "mig_oldtx")
    old = psycopg.connect(db, application_name="old-snapshot")
    old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    old.execute("SELECT count(*) FROM phoenix_kit_webhook_events")
    try:
        p = start_migrate(db, "up", "--progress-interval", "300", logfile=str(tmp_path / "o.log"))
        log = wait_for_log(p, "waiting for: pid")
        assert "old-snapshot" in log and "build the unique index" in log
        time.sleep(0.5)
        assert p.poll() is None
    finally:
        old.rollback()
        old.close()
    assert p.wait(timeout=60) == 0, read_log(p)
    assert_end_state(db)


def test_batches_wait_for_a_lagging_replica(pg, tmp_path):
    from migrate_helpers import start_standby
    db = v39_db(pg, "mig_replica", scale=2)
    standby = start_standby(pg)
    try:
        standby.sql("SELECT pg_wal_replay_pause()")
        p = start_migrate(db, "up", "--max-replication-lag-bytes", "1MB", "--progress-interval", "300",
                          logfile=str(tmp_path / "rep.log"))
        wait_for_log(p, "pausing batches")
        time.sleep(1)
        assert p.poll() is None  # still waiting for the replica
        standby.sql("SELECT pg_wal_replay_resume()")
        assert p.wait(timeout=120) == 0, read_log(p)
        assert "resuming batches" in read_log(p)
        assert_end_state(db)
    finally:
        standby.destroy()


def test_losing_the_lock_connection_stops_every_worker(pg, tmp_path):
    db = v39_db(pg, "mig_lost", scale=2)
    p = start_migrate(db, "up", *SLOW, "--workers", "2", logfile=str(tmp_path / "lost.log"))
    wait_for_log(p, "phoenix_kit_email_logs: backfilling")
    holder = query(db, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")[0][0]
    query(db, "SELECT pg_terminate_backend(%s)", [holder])
    assert p.wait(timeout=30) == 1
    log = read_log(p)
    assert "lost the connection holding the migration lock" in log
    assert_no_runner_left(db)
    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)


def test_new_leader_cancels_a_dead_runners_statement(pg, tmp_path):
    db = v39_db(pg, "mig_leftover")
    query(db, "CREATE SCHEMA other")
    query(db, "CREATE TABLE other.t (id int)")
    query(db, "INSERT INTO other.t VALUES (1)")
    # What a killed runner's backend may still be running: one of its batches;
    # and a runner of another prefix, which is none of this runner's business.
    sessions = {name: psycopg.connect(db, autocommit=True, application_name="uuidgate-migrate")
                for name in ("public", "other")}
    outcome = {}

    def run(name, table, secs):
        try:
            sessions[name].execute(f'WITH locked AS (SELECT pg_sleep({secs}) FROM "{name}"."{table}"'
                                   f' LIMIT 1) SELECT 1 FROM locked')
            outcome[name] = "finished"
        except psycopg.Error as e:
            outcome[name] = type(e).__name__

    threads = [threading.Thread(target=run, args=("public", "phoenix_kit_users", 60)),
               threading.Thread(target=run, args=("other", "t", 4))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    try:
        r = run_migrate(db, "up")
        assert r.returncode == 0, r.stderr
        assert "leftover session of a previous runner" in r.stderr
        for t in threads:
            t.join(timeout=15)
        assert outcome == {"public": "QueryCanceled", "other": "finished"}
    finally:
        for conn in sessions.values():
            conn.close()
    assert_end_state(db)


def test_rows_held_by_the_application_are_skipped_then_named(pg, tmp_path):
    db = v39_db(pg, "mig_held", scale=2)
    p = start_migrate(db, "up", *SLOW, "--skip-retries", "2", logfile=str(tmp_path / "held.log"))
    wait_for_log(p, "phoenix_kit_users: backfilling")
    holder = psycopg.connect(db, application_name="row-holder")
    try:
        holder.execute("SELECT id FROM phoenix_kit_users WHERE id = 399 FOR UPDATE")
        log = wait_for_log(p, "rows still held by the application")
        assert "399 held by pid" in log and "row-holder" in log
        # The NOT NULL check needs the table to itself: it waits and names the holder.
        log = wait_for_log(p, "blocked by: pid")
        assert "row-holder" in log.split("blocked by: pid")[-1]
        assert p.poll() is None
    finally:
        holder.rollback()
        holder.close()
    assert p.wait(timeout=60) == 0, read_log(p)
    assert_end_state(db)
