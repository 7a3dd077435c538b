-- Owner-based visibility inside a partner, enforced by row-level security
-- as well as by the application's own filters. A transaction sees a row
-- when its transaction-local settings say so:
--
--   xat.role = 'admin'   a partner administrator: every row;
--   xat.role = 'system'  background jobs and the CLI: every row;
--   otherwise            only rows whose owner_id is xat.user_id.
--
-- With neither setting nothing is visible and nothing can be written: a
-- code path that forgot to say who is acting fails closed.
--
-- The policies are restrictive, so they narrow the permissive base policy
-- that tenancy installs, and hold alongside tenancy's own restrictive
-- tenant guard. The same expression is the WITH CHECK, so a member can
-- neither insert a row for someone else nor hand one of theirs away.
--
-- Collector tokens have no owner of their own: they follow their
-- collector. Their policy asks whether the collector is visible, and the
-- collectors' own policies answer, so the rule is written once. A member
-- sees and manages the tokens of their own collectors only; looking a
-- token up by its hash during an upload therefore runs as 'system'.
--
-- Written rows must also hang off a visible parent: a member cannot file
-- data under someone else's collector, nor queue an analysis of someone
-- else's data, even in their own name. The parent must be visible to the
-- statement that writes the child: one statement cannot insert both (the
-- rows of a data-modifying WITH are not visible to the rest of it), so
-- write them in two statements of the same transaction.
--
-- Rollout: serving code that sets these settings must be deployed before
-- or with this migration; code that does not set them sees no rows here.

ALTER TABLE collectors ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE collector_tokens ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE collected_data ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE capture_analyses ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY xat_owner ON collectors AS RESTRICTIVE
    USING (
        current_setting('xat.role', true) IN ('admin', 'system')
        OR owner_id = nullif(current_setting('xat.user_id', true), '')::bigint)
    WITH CHECK (
        current_setting('xat.role', true) IN ('admin', 'system')
        OR owner_id = nullif(current_setting('xat.user_id', true), '')::bigint);

CREATE POLICY xat_owner ON collected_data AS RESTRICTIVE
    USING (
        current_setting('xat.role', true) IN ('admin', 'system')
        OR owner_id = nullif(current_setting('xat.user_id', true), '')::bigint)
    WITH CHECK (
        (current_setting('xat.role', true) IN ('admin', 'system')
         OR owner_id = nullif(current_setting('xat.user_id', true), '')::bigint)
        AND EXISTS (SELECT 1 FROM collectors c WHERE c.id = collected_data.collector_id));

CREATE POLICY xat_owner ON capture_analyses AS RESTRICTIVE
    USING (
        current_setting('xat.role', true) IN ('admin', 'system')
        OR owner_id = nullif(current_setting('xat.user_id', true), '')::bigint)
    WITH CHECK (
        (current_setting('xat.role', true) IN ('admin', 'system')
         OR owner_id = nullif(current_setting('xat.user_id', true), '')::bigint)
        AND EXISTS (SELECT 1 FROM collected_data d WHERE d.id = capture_analyses.collected_data_id));

CREATE POLICY xat_owner ON collector_tokens AS RESTRICTIVE
    USING (EXISTS (SELECT 1 FROM collectors c WHERE c.id = collector_tokens.collector_id))
    WITH CHECK (EXISTS (SELECT 1 FROM collectors c WHERE c.id = collector_tokens.collector_id));
