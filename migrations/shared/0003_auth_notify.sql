-- Every running instance caches what a personal token proves (its user and
-- the user's role on the token's partner) for a few seconds. Changes to
-- tokens, memberships and users are announced on xat_auth so that every
-- instance drops those entries at once.

CREATE FUNCTION public.xat_notify_auth() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('xat_auth', TG_TABLE_NAME);
    RETURN NULL;
END $$;

-- Recording a token's use (last_used_at) is not a change of what it proves.
CREATE TRIGGER api_tokens_notify AFTER UPDATE OF revoked_at, expires_at, user_id, tenant_id OR DELETE ON public.api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION public.xat_notify_auth();
CREATE TRIGGER memberships_notify AFTER INSERT OR UPDATE OR DELETE ON public.memberships
    FOR EACH STATEMENT EXECUTE FUNCTION public.xat_notify_auth();
CREATE TRIGGER users_notify AFTER UPDATE OF disabled_at, is_platform_admin OR DELETE ON public.users
    FOR EACH STATEMENT EXECUTE FUNCTION public.xat_notify_auth();
