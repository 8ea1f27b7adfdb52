-- Subscribe billing_inbox.bill_order (db/inbox.sql) to "order.created".
-- Run as a superuser or the extension's owner, after db/inbox.sql:
--     psql -d orders -f db/inbox-subscribe.sql
--
-- The inbox runs a handler as the role that subscribed, so the
-- subscription is made as billing_inbox (SET ROLE): the handler then has
-- that role's few privileges, never the superuser's.  billing_inbox may
-- call outbox.subscribe only for this statement.  3 attempts, as the
-- hand-written consumer's BILLING_MAX_ATTEMPTS, then the message goes to
-- outbox.inbox_dead_letter and its partition goes on.
--
-- The worker starts within a second, from the beginning of the topic.  To
-- start where the topic ends now instead, call outbox.inbox_rewind(
-- 'billing', partition, high watermark) for each partition in the same
-- transaction (test/support/inbox.ts does).

GRANT EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text)
    TO billing_inbox;
SET ROLE billing_inbox;
SELECT outbox.subscribe('billing', 'order.created',
                        'billing_inbox.bill_order(outbox.inbox_message)',
                        max_attempts => 3);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION outbox.subscribe(text, text, regprocedure, integer, text, text)
    FROM billing_inbox;
