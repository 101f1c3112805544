-- Reverts 000014. Check secrets still waiting to be sealed go back into the settings. Sealed ones cannot
-- be opened in SQL (the key is not in the database) and are lost: their masks are taken out of the
-- settings, so those checks must be given their secrets again.
UPDATE app.checks
   SET settings = settings || (secrets_staging - 'headers')
 WHERE secrets_staging IS NOT NULL;
UPDATE app.checks
   SET settings = jsonb_set(settings, '{headers}', (settings -> 'headers') || (secrets_staging -> 'headers'))
 WHERE secrets_staging ? 'headers' AND jsonb_typeof(settings -> 'headers') = 'object';
UPDATE app.checks
   SET settings = coalesce((SELECT jsonb_object_agg(s.key, s.value) FROM jsonb_each(settings) s
                             WHERE s.value <> '"********"'::jsonb), '{}')
 WHERE settings @? '$.* ? (@ == "********")';
UPDATE app.checks
   SET settings = jsonb_set(settings, '{headers}',
                            coalesce((SELECT jsonb_object_agg(h.key, h.value) FROM jsonb_each(settings -> 'headers') h
                                       WHERE h.value <> '"********"'::jsonb), '{}'))
 WHERE jsonb_typeof(settings -> 'headers') = 'object' AND settings @? '$.headers.* ? (@ == "********")';
ALTER TABLE app.checks DROP COLUMN secrets_staging, DROP COLUMN secrets;

DROP TABLE app.notification_attempts;
DROP TRIGGER notifications_schedule ON app.notifications;
DROP FUNCTION app.schedule_notification();
DROP INDEX app.notifications_channel_id_id_idx;
DROP INDEX app.notifications_group_idx;
ALTER TABLE app.notifications
    DROP CONSTRAINT notifications_tenant_id_id_key,
    DROP COLUMN last_attempt_at,
    DROP COLUMN lease_owner,
    DROP COLUMN rule_id;
DROP FUNCTION app.notification_rule_id(jsonb);
ALTER TABLE app.channels DROP COLUMN group_interval_seconds, DROP COLUMN group_wait_seconds;
