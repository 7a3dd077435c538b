-- The registry and bookkeeping that tenancy keeps in the public schema.
-- Every statement is idempotent: the script runs whenever tenancy's own
-- version moves, under an advisory lock. {{serving}} and {{tenants}} are the
-- serving role and the group role of all tenant roles.

CREATE TABLE IF NOT EXISTS public.tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    schema_name text NOT NULL UNIQUE CHECK (schema_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    active      boolean NOT NULL DEFAULT true,
    info_url    text NOT NULL DEFAULT '',
    created_on  timestamptz NOT NULL DEFAULT now(),
    paid_until  date
);

CREATE TABLE IF NOT EXISTS public.domains (
    domain     text PRIMARY KEY CHECK (domain = lower(domain) AND length(domain) <= 253),
    tenant_id  bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    is_primary boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS domains_tenant_id ON public.domains (tenant_id);
CREATE UNIQUE INDEX IF NOT EXISTS domains_one_primary ON public.domains (tenant_id) WHERE is_primary;

-- One row per schema and migration set: the central record that makes
-- "is anything pending?" one query.
CREATE TABLE IF NOT EXISTS public.tenancy_schema_state (
    schema_name text NOT NULL,
    component   text NOT NULL CHECK (component IN ('tenancy', 'shared', 'tenant')),
    version     integer NOT NULL DEFAULT 0,
    applied_at  timestamptz,
    last_error  text,
    failed_at   timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, component)
);

-- Registry changes are announced so that every running instance can drop
-- its cached host-to-tenant entries.
CREATE OR REPLACE FUNCTION public.tenancy_notify_registry() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenancy_registry', TG_TABLE_NAME);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tenants_notify ON public.tenants;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON public.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION public.tenancy_notify_registry();
DROP TRIGGER IF EXISTS domains_notify ON public.domains;
CREATE TRIGGER domains_notify AFTER INSERT OR UPDATE OR DELETE ON public.domains
    FOR EACH STATEMENT EXECUTE FUNCTION public.tenancy_notify_registry();

-- tenancy_secure_schema gives a tenant role the use of its schema's tables
-- and sequences, and the reporting role read access, and puts the tenant
-- guard on every table that lacks it: row-level security, forced even for
-- the owner, with a restrictive policy that requires the transaction's
-- tenant setting to name this schema. The permissive tenancy_base policy
-- lets application policies, which must be restrictive, narrow visibility
-- further.
--
-- The schema's relations are found through pg_depend's index on the
-- referenced namespace and granted by name. GRANT ... ON ALL TABLES IN
-- SCHEMA, and any lookup of pg_class by namespace, scans all of pg_class,
-- which grows with every tenant: provisioning would slow down as the fleet
-- grows.
CREATE OR REPLACE FUNCTION public.tenancy_secure_schema(p_schema text, p_role text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    report constant text := {{report_literal}};
    nsp oid;
    rels oid[];
    tables text;
    seqs text;
    t record;
BEGIN
    SELECT oid INTO nsp FROM pg_namespace WHERE nspname = p_schema;
    SELECT array_agg(d.objid) INTO rels
      FROM pg_depend d
     WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = nsp
       AND d.classid = 'pg_class'::regclass;

    SELECT string_agg(format('%I.%I', p_schema, relname), ', ') FILTER (WHERE relkind IN ('r', 'p', 'v', 'm')),
           string_agg(format('%I.%I', p_schema, relname), ', ') FILTER (WHERE relkind = 'S')
      INTO tables, seqs
      FROM pg_class
     WHERE oid = ANY (rels);

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I', p_schema, p_role, report);
    IF tables IS NOT NULL THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %I', tables, p_role);
        EXECUTE format('GRANT SELECT ON TABLE %s TO %I', tables, report);
    END IF;
    IF seqs IS NOT NULL THEN
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO %I', seqs, p_role);
    END IF;

    FOR t IN
        SELECT c.relname
        FROM pg_class c
        WHERE c.oid = ANY (rels)
          AND c.relkind IN ('r', 'p')
          AND NOT EXISTS (
              SELECT 1 FROM pg_policy p
              WHERE p.polrelid = c.oid AND p.polname = 'tenancy_guard')
    LOOP
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY',
            p_schema, t.relname);
        EXECUTE format(
            'CREATE POLICY tenancy_guard ON %I.%I AS RESTRICTIVE'
            ' USING (current_setting(''tenancy.tenant'', true) = %L OR current_user = %L)'
            ' WITH CHECK (current_setting(''tenancy.tenant'', true) = %L)',
            p_schema, t.relname, p_schema, report, p_schema);
        EXECUTE format('CREATE POLICY tenancy_base ON %I.%I USING (true) WITH CHECK (true)',
            p_schema, t.relname);
        EXECUTE format('CREATE POLICY tenancy_report ON %I.%I FOR SELECT TO %I USING (true)',
            p_schema, t.relname, report);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION public.tenancy_secure_schema(text, text) FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO {{serving}}, {{tenants}}, {{report}};
GRANT SELECT ON public.tenants TO {{report}};
GRANT {{report}} TO CURRENT_USER;
GRANT SELECT ON public.tenants, public.domains, public.tenancy_schema_state TO {{serving}};
