-- An application's transaction for the migration benchmark: read by id,
-- insert, update, on the large tables being migrated (named columns, as Ecto
-- sends them).
\set uid random(1, 200 * :scale)
\set lid random(1, 1000 * :scale)
\set eid random(1, 1000 * :scale)
BEGIN;
SELECT id, email, first_name, last_name FROM phoenix_kit_users WHERE id = :uid;
SELECT id, event_type, occurred_at FROM phoenix_kit_email_events WHERE id = :eid;
INSERT INTO phoenix_kit_email_logs (user_id, message_id, "to", "from", status, inserted_at, updated_at)
  VALUES (:uid, 'bench', 'a@example.com', 'b@example.com', 'sent', now(), now());
INSERT INTO phoenix_kit_audit_logs (target_user_id, admin_user_id, action, inserted_at)
  VALUES (:uid, 1, 'bench', now());
UPDATE phoenix_kit_email_logs SET status = 'opened', updated_at = now() WHERE id = :lid;
UPDATE phoenix_kit_users SET updated_at = now() WHERE id = :uid;
END;
