-- Shared data model: accounts, memberships, tokens, sessions, reference
-- data and the audit trail. Partners themselves are the tenancy registry
-- (public.tenants and public.domains).

CREATE TABLE public.users (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email             text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash     text NOT NULL,
    is_platform_admin boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    disabled_at       timestamptz
);
CREATE UNIQUE INDEX users_email ON public.users (email);

CREATE TABLE public.memberships (
    user_id    bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    tenant_id  bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX memberships_tenant_id ON public.memberships (tenant_id);

-- Personal API tokens: bound to one partner, stored as a SHA-256 hash,
-- shown once at creation.
CREATE TABLE public.api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    tenant_id    bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_tenant ON public.api_tokens (user_id, tenant_id);

-- Server-side sessions. tenant_id is NULL for a session on a public host.
CREATE TABLE public.sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    tenant_id    bigint REFERENCES public.tenants (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    client_addr  text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_expires_at ON public.sessions (expires_at);

-- Reference data shared by all partners.
CREATE TABLE public.platforms (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 100),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.platforms (name) VALUES ('Windows'), ('Linux'), ('VMware ESXi'), ('Hyper-V');

-- The audit trail keeps the partner's id without a foreign key, so that it
-- outlives a deleted partner.
CREATE TABLE public.audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    tenant_id   bigint,
    user_id     bigint,
    actor       text NOT NULL DEFAULT '',
    host        text NOT NULL DEFAULT '',
    client_addr text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON public.audit_events (at DESC, id DESC);
CREATE INDEX audit_events_tenant_at ON public.audit_events (tenant_id, at DESC);

GRANT SELECT ON public.platforms TO {{tenants}};
GRANT SELECT, INSERT, UPDATE, DELETE
    ON public.users, public.memberships, public.api_tokens, public.sessions, public.platforms
    TO {{serving}};
GRANT SELECT, INSERT ON public.audit_events TO {{serving}};
