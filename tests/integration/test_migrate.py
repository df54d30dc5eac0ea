"""The V40 migration engine against a real PostgreSQL: end state, round
trips, version cases, kills and resumes, concurrent runners, and an
application working while it runs."""

import json
import os
import time

import psycopg
import pytest

from migrate_helpers import (assert_end_state, assert_no_runner_left, column_state, data_digest,
                             fresh_db, query, run_migrate, scalar, uuid_indexes, v39, v39_db,
                             version_marker)

TEMPLATES = "phoenix_kit_email_templates"


def uuid_ms(u):
    return int(str(u).replace("-", "")[:12], 16)


def template_uuids(conninfo):
    return dict(query(conninfo, f"SELECT id, uuid FROM public.{TEMPLATES} WHERE uuid IS NOT NULL"))


def test_up_down_up_round_trip(pg):
    db = v39_db(pg, "mig_roundtrip", scale=2)
    # The session TimeZone must not move inserted_at: it holds UTC.
    pg.sql("ALTER DATABASE mig_roundtrip SET timezone = 'America/New_York'")
    before = data_digest(db)
    kept = template_uuids(db)
    started_ms = int(time.time() * 1000)

    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)
    assert data_digest(db) == before
    after_templates = template_uuids(db)
    assert all(after_templates[k] == v for k, v in kept.items())
    assert "uuidgate:v40 created" in column_state(db, "phoenix_kit_users")[3]

    # Timestamps from inserted_at, read as UTC; ties in a second follow id.
    rows = query(db, "SELECT id, uuid, (extract(epoch FROM inserted_at) * 1000)::bigint"
                     " FROM phoenix_kit_users ORDER BY id")
    assert all(uuid_ms(u) == ms for _, u, ms in rows)
    assert [r[0] for r in sorted(rows, key=lambda r: str(r[1]))] == [r[0] for r in rows]
    rows = query(db, "SELECT uuid, (extract(epoch FROM inserted_at) * 1000)::bigint"
                     " FROM phoenix_kit_audit_logs ORDER BY id LIMIT 50")
    assert all(uuid_ms(u) == ms for u, ms in rows)
    # NULL, infinity and pre-1970 take the migration's start time.
    odd = query(db, "SELECT uuid FROM phoenix_kit_email_orphaned_events"
                    " WHERE message_id IN ('legacy-null', 'legacy-infinity', 'legacy-1960')")
    assert len(odd) == 3
    assert all(abs(uuid_ms(u) - started_ms) < 120000 for (u,) in odd)
    # No inserted_at: now.
    for (u,) in query(db, "SELECT uuid FROM phoenix_kit_settings"):
        assert abs(uuid_ms(u) - started_ms) < 120000

    status = json.loads(run_migrate(db, "status", "--json").stdout)
    assert status["version"] == 40
    assert {t["state"] for t in status["tables"] if t["exists"]} == {"done"}

    r = run_migrate(db, "down")
    assert r.returncode == 0, r.stderr
    assert version_marker(db) == "39"
    for t in v39.TABLES:
        if t in v39.DEFAULT_MISSING:
            continue
        if t == TEMPLATES:
            # Existed before up: data, kept as it was.
            assert column_state(db, t) == ("uuid", False, None, None)
            assert uuid_indexes(db, t) == []
        else:
            assert column_state(db, t) is None, t
    assert template_uuids(db) == after_templates
    assert data_digest(db) == before

    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)
    assert_no_runner_left(db)


def test_plan_and_status_change_nothing(pg):
    db = v39_db(pg, "mig_plan")
    query(db, "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
              " $$BEGIN NEW.updated_at := NEW.updated_at; RETURN NEW; END$$")
    query(db, "CREATE TRIGGER users_touch BEFORE UPDATE ON phoenix_kit_users"
              " FOR EACH ROW EXECUTE FUNCTION touch()")
    r = run_migrate(db, "plan")
    assert r.returncode == 0, r.stderr
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in r.stdout
    assert "ACCESS EXCLUSIVE" in r.stdout and "users_touch" in r.stdout
    s = run_migrate(db, "status")
    assert s.returncode == 0 and "users_touch" in s.stdout and "absent" in s.stdout
    assert column_state(db, "phoenix_kit_users") is None
    assert version_marker(db) == "39"
    r = run_migrate(db, "up")
    assert r.returncode == 0 and "users_touch" in r.stderr


def set_marker(db, text):
    if text is None:
        query(db, "COMMENT ON TABLE phoenix_kit IS NULL")
    else:
        query(db, "COMMENT ON TABLE phoenix_kit IS %s" % psycopg.sql.quote(text))


@pytest.mark.parametrize("marker", [None, "38", "not a number"])
def test_not_applicable_changes_nothing(pg, marker):
    db = v39_db(pg, "mig_na")
    set_marker(db, marker)
    before = data_digest(db)
    r = run_migrate(db, "up")
    assert r.returncode == 3, r.stderr
    assert "not applicable" in r.stderr
    assert column_state(db, "phoenix_kit_users") is None
    assert scalar(db, "SELECT count(*) FROM pg_proc WHERE proname = 'uuid_generate_v7'") == 0
    assert data_digest(db) == before
    assert run_migrate(db, "down").returncode == 3


def test_no_phoenixkit_and_bad_prefix(pg):
    db = fresh_db(pg, "mig_empty")
    r = run_migrate(db, "up")
    assert r.returncode == 3 and "phoenix_kit" in r.stderr
    r = run_migrate(db, "up", "--prefix", "nothere")
    assert r.returncode == 3 and "schema nothere does not exist" in r.stderr
    r = run_migrate(db, "up", "--prefix", "Bad-Name")
    assert r.returncode == 2
    assert run_migrate(db, "sideways").returncode == 2


def test_at_40_and_41_verified(pg):
    db = v39_db(pg, "mig_41")
    assert run_migrate(db, "up").returncode == 0
    r = run_migrate(db, "up")
    assert r.returncode == 0 and "verified complete" in r.stderr
    set_marker(db, "41")
    r = run_migrate(db, "up")
    assert r.returncode == 0 and "verified complete" in r.stderr
    assert run_migrate(db, "down").returncode == 3
    assert version_marker(db) == "41"


def test_phoenixkit_own_v40_is_reported_and_repaired(pg):
    db = v39_db(pg, "mig_pk40")
    v39.apply_phoenixkit_v40(db)
    assert version_marker(db) == "40"
    status = json.loads(run_migrate(db, "status", "--json").stdout)
    incomplete = {t["name"] for t in status["tables"] if t["exists"] and t["state"] != "done"}
    assert incomplete == {TEMPLATES}

    r = run_migrate(db, "up")
    assert r.returncode == 0 and TEMPLATES in r.stderr and "--repair" in r.stderr
    assert column_state(db, TEMPLATES)[1] is False

    kept = template_uuids(db)
    r = run_migrate(db, "up", "--repair")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)
    assert all(template_uuids(db)[k] == v for k, v in kept.items())
    assert version_marker(db) == "40"

    # Down on a database PhoenixKit migrated: as PhoenixKit's down, and said so.
    r = run_migrate(db, "down")
    assert r.returncode == 0 and "PhoenixKit" in r.stderr
    assert version_marker(db) == "39"


def test_existing_v4_column_completed_and_restored(pg):
    db = v39_db(pg, "mig_v4")
    query(db, f"UPDATE {TEMPLATES} SET uuid = gen_random_uuid() WHERE uuid IS NULL")
    query(db, f"ALTER TABLE {TEMPLATES} ALTER COLUMN uuid SET DEFAULT gen_random_uuid()")
    kept = template_uuids(db)
    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)
    assert template_uuids(db) == kept
    r = run_migrate(db, "down")
    assert r.returncode == 0, r.stderr
    typ, notnull, default, comment = column_state(db, TEMPLATES)
    assert (typ, notnull, default, comment) == ("uuid", False, "gen_random_uuid()", None)
    assert template_uuids(db) == kept


def test_duplicates_stop_with_names_then_resume(pg):
    db = v39_db(pg, "mig_dup")
    dup = scalar(db, f"SELECT uuid FROM {TEMPLATES} WHERE uuid IS NOT NULL ORDER BY id LIMIT 1")
    query(db, f"UPDATE {TEMPLATES} SET uuid = %s WHERE id IN (3, 5)", [dup])
    # An earlier failed build leaves an INVALID index behind.
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(db, f"CREATE UNIQUE INDEX CONCURRENTLY {TEMPLATES}_uuid_idx ON {TEMPLATES} (uuid)")
    assert [v for _, v, _, _ in uuid_indexes(db, TEMPLATES)] == [False]

    r = run_migrate(db, "up")
    assert r.returncode == 1
    assert str(dup) in r.stderr and "more than once" in r.stderr
    assert uuid_indexes(db, TEMPLATES) == []
    assert version_marker(db) == "39"

    query(db, f"UPDATE {TEMPLATES} SET uuid = NULL WHERE id IN (3, 5)")
    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)


def test_application_role_without_superuser(pg):
    """The application's role, owning its tables but not the database: the
    missing pgcrypto is the only thing it cannot create, and the error says
    what a superuser must run."""
    pg.sql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN"
           " CREATE ROLE app LOGIN; END IF; END$$")
    su = fresh_db(pg, "mig_role")
    query(su, "ALTER SCHEMA public OWNER TO app")
    db = pg.conninfo(dbname="mig_role", user="app")
    v39.load(db, scale=1)
    r = run_migrate(db, "up")
    assert r.returncode == 1
    assert 'CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA "public"' in r.stderr
    assert column_state(db, "phoenix_kit_users") is None
    query(su, "CREATE EXTENSION pgcrypto SCHEMA public")
    r = run_migrate(db, "up")
    assert r.returncode == 0, r.stderr
    assert_end_state(db)
    assert run_migrate(db, "down").returncode == 0


def test_other_prefix_and_hostile_search_path(pg):
    """PhoenixKit in schema kit; the application's search_path puts a schema
    of look-alike functions first: the generated values are still v7."""
    db = v39_db(pg, "mig_prefix")
    query(db, "ALTER SCHEMA public RENAME TO kit")
    query(db, "CREATE SCHEMA public")
    query(db, "CREATE SCHEMA evil")
    query(db, "CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql"
              " AS $$SELECT '00000000-0000-4000-8000-000000000000'::uuid$$")
    query(db, "CREATE FUNCTION evil.overlay(bytea, bytea, int, int) RETURNS bytea LANGUAGE sql"
              " AS $$SELECT $1$$")
    query(db, "ALTER DATABASE mig_prefix SET search_path = evil, kit, public")
    r = run_migrate(db, "up", "--prefix", "kit")
    assert r.returncode == 0, r.stderr
    assert_end_state(db, schema="kit")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO phoenix_kit_ai_prompts (name, slug, content, inserted_at, updated_at)"
                     " VALUES ('p', 'p-new', 'c', now(), now())")
        u = conn.execute("SELECT uuid FROM kit.phoenix_kit_ai_prompts WHERE slug = 'p-new'").fetchone()[0]
        assert str(u)[14] == "7" and str(u) != "00000000-0000-4000-8000-000000000000"
        assert abs(uuid_ms(u) - time.time() * 1000) < 60000
    assert run_migrate(db, "down", "--prefix", "kit").returncode == 0
    assert version_marker(db, "kit") == "39"


def test_existing_function_must_return_v7(pg):
    db = v39_db(pg, "mig_fn")
    query(db, "CREATE FUNCTION public.uuid_generate_v7() RETURNS uuid LANGUAGE sql"
              " AS $$SELECT gen_random_uuid()$$")
    r = run_migrate(db, "up")
    assert r.returncode == 1 and "not a UUIDv7" in r.stderr
    assert column_state(db, "phoenix_kit_users") is None
    # PhoenixKit's own (PL/pgSQL, pgcrypto called unqualified) is accepted and kept.
    query(db, "DROP FUNCTION public.uuid_generate_v7()")
    with open(os.path.join(v39.HERE, "phoenixkit_v40.sql")) as f:
        ref = f.read()
    start = ref.index("CREATE OR REPLACE FUNCTION")
    end = ref.index("LANGUAGE plpgsql VOLATILE;") + len("LANGUAGE plpgsql VOLATILE;")
    query(db, "CREATE EXTENSION IF NOT EXISTS pgcrypto")
    query(db, ref[start:end])
    r = run_migrate(db, "up")
    assert r.returncode == 0 and "keeping the existing public.uuid_generate_v7() (plpgsql)" in r.stderr
    assert_end_state(db)
