-- Who may reach the job queue. The queue's tables (River's river_job and
-- friends) live in public and are created by River's own migrator, which
-- xat migrate runs before this set; this file only decides access:
--
--   The owner of the schemas, which created the tables, runs the queue's
--   clients: workers fetch, finish and clean up jobs as the owner. Row
--   level security on river_job is enabled but not forced, so it does not
--   apply to them.
--
--   A tenant scope may add jobs in the transaction that writes the rows a
--   job needs (an analysis row and its job commit together or not at
--   all), and may see only its own jobs: every row a tenant role reads or
--   writes must carry the transaction's tenant in args.tenant_schema. The
--   grants are what River's transactional insert needs (its insert returns
--   the row, and names kind in an ON CONFLICT update).
--
--   The serving role gets nothing here; under the policy guard it holds
--   the tenant roles' privileges and is confined by the same policy.
--
-- River's tables may not exist yet when this runs (a new database whose
-- shared set ran first, or a test database that never uses jobs), so the
-- grants live in a function: this migration calls it, and the queue's
-- migration step calls it again after River's migrator has run. It is
-- idempotent. Both take the same advisory lock, so that whichever commits
-- second sees the other's work.

SELECT pg_advisory_xact_lock(hashtextextended('xat.job_queue', 0));

CREATE FUNCTION public.xat_secure_job_queue() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF to_regclass('public.river_job') IS NULL THEN
        RETURN false;
    END IF;

    GRANT SELECT, INSERT ON public.river_job TO {{tenants}};
    GRANT UPDATE (kind) ON public.river_job TO {{tenants}};
    GRANT USAGE ON SEQUENCE public.river_job_id_seq TO {{tenants}};

    ALTER TABLE public.river_job ENABLE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS xat_tenant_jobs ON public.river_job;
    CREATE POLICY xat_tenant_jobs ON public.river_job TO {{tenants}}
        USING (args ->> 'tenant_schema' = current_setting('tenancy.tenant', true))
        WITH CHECK (args ->> 'tenant_schema' = current_setting('tenancy.tenant', true));
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION public.xat_secure_job_queue() FROM PUBLIC;

SELECT public.xat_secure_job_queue();
