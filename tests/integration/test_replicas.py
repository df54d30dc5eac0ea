"""Several uuidgate replicas in front of one database, as a Deployment with
many pods starts them: exactly one runs the migration, the others wait on
its advisory lock and open their gates when it is done; if the one that
migrates dies, another takes over and resumes."""

import re

from gate_helpers import (BackgroundClient, TableLock, gate_settings, status, v39_copy, wait_held,
                          wait_lock_wait, wait_open, wait_status)
from migrate_helpers import assert_end_state, assert_no_runner_left, data_digest

HOLDING = re.compile(r"holding the migration lock \(pid (\d+)\)")
WAITING = re.compile(r"waiting: another runner holds the migration lock: pid (\d+)")


def start_replicas(factory, db, n=3, **settings):
    gates = [factory(gate_settings(**settings), upstream=db, start=False) for _ in range(n)]
    for g in gates:
        g.start(wait=False)
    for g in gates:
        wait_status(g, lambda s: True, 15, "HTTP endpoint")
    return gates


def wait_roles(gates, timeout=30):
    """Waits until one replica holds the lock and every other one waits on
    it; returns (leader, followers)."""
    def roles():
        leaders = [g for g in gates if HOLDING.search(g.log())]
        waiters = [g for g in gates if WAITING.search(g.log()) and not HOLDING.search(g.log())]
        return leaders, waiters
    wait_status(gates[0], lambda _: len(roles()[0]) == 1 and len(roles()[1]) == len(gates) - 1,
                timeout, "one leader and waiting followers")
    leaders, waiters = roles()
    return leaders[0], waiters


def test_three_replicas_one_migrates_all_open(pg, uuidgate_factory):
    db = v39_copy(pg, "replicas_three")
    before = data_digest(db)
    with TableLock(db):
        gates = start_replicas(uuidgate_factory, db)
        leader, followers = wait_roles(gates)
        leader_pid = HOLDING.search(leader.log()).group(1)
        for f in followers:
            assert WAITING.search(f.log()).group(1) == leader_pid, f.log()
            st = status(f)
            assert not st["gate"]["open"]
            assert st["migration"]["phase"] == "waiting_lock"
            assert st["migration"]["leader"]["pid"] == int(leader_pid)
            assert f"waiting for leader (pid {leader_pid}" in st["gate"]["description"]
        wait_lock_wait(leader)
        # A client held by a follower is let in when the leader finishes.
        client = BackgroundClient(followers[0].conninfo(dbname="replicas_three"),
                                  "SELECT count(uuid) FROM public.phoenix_kit_users")
        wait_held(followers[0])

    for g in gates:
        st = wait_open(g, timeout=60)
        assert st["gate"]["state"] == "ready", st
    assert client.result().error is None, client.error
    assert client.rows[0][0] > 0

    logs = [g.log() for g in gates]
    migrated = [log for log in logs if "stamp version 40" in log]
    backfilled = [log for log in logs if ": backfilling " in log]
    assert len(migrated) == 1 and len(backfilled) == 1
    assert "stamp version 40" in leader.log()
    for f in followers:
        assert ": backfilling " not in f.log()
        assert "ADD COLUMN" not in f.log()
    assert_end_state(db)
    assert data_digest(db) == before
    assert_no_runner_left(db)


def test_leader_killed_mid_migration_another_takes_over(pg, uuidgate_factory):
    db = v39_copy(pg, "replicas_kill")
    before = data_digest(db)
    gates = start_replicas(uuidgate_factory, db, migrate_batch_pause="50ms", migrate_batch_time="5ms")
    leader, followers = wait_roles(gates)
    wait_status(leader, lambda s: s["migration"]["rows_done"] >= 200, 30, "backfill under way")
    assert "stamp version 40" not in leader.log()
    leader.proc.kill()
    leader.proc.wait()

    def someone_took_over(_):
        return any(HOLDING.search(f.log()) for f in followers)
    wait_status(followers[0], someone_took_over, 30, "a new leader")
    for g in followers:
        st = wait_open(g, timeout=90)
        assert st["gate"]["state"] == "ready", st
    assert sum("stamp version 40" in f.log() for f in followers) == 1
    assert_end_state(db)
    assert data_digest(db) == before
    assert_no_runner_left(db)
