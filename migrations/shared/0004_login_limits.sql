-- Login attempts are limited per account and per client address across
-- every running instance, so that more instances do not mean more guesses.
-- Each key keeps one time: when its allowance is whole again (the
-- theoretical arrival time of the generic cell rate algorithm). Keys are
-- stored as SHA-256 digests, so the table names no account or address. A
-- row whose time has passed means the same as no row; maintenance deletes
-- those.
CREATE TABLE public.login_limits (
    key_hash    bytea PRIMARY KEY,
    restored_at timestamptz NOT NULL
);
CREATE INDEX login_limits_restored_at ON public.login_limits (restored_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON public.login_limits TO {{serving}};
