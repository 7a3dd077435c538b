-- A partner's data model. Runs with the partner's schema first on the search
-- path: unqualified names are the partner's tables, shared ones are written
-- public.x.
--
-- Partner tables hold ids of shared rows (platform_id, owner_id) without
-- foreign keys to them. A foreign key puts two triggers on the referenced
-- shared table for every partner: with thousands of partners, public.users
-- would carry tens of thousands of triggers, every backend would reload
-- them whenever a partner is provisioned, and each new partner would take
-- longer to create than the last. The application checks these ids when it
-- writes them; shared rows are never deleted.

CREATE TABLE collectors (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_name    text NOT NULL CHECK (length(site_name) BETWEEN 1 AND 200),
    machine_name text NOT NULL CHECK (length(machine_name) BETWEEN 1 AND 200),
    platform_id  bigint NOT NULL, -- public.platforms
    owner_id     bigint NOT NULL, -- public.users
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz
);
CREATE INDEX collectors_owner_id ON collectors (owner_id, id);

-- Upload-only tokens, each bound to one collector, stored hashed.
CREATE TABLE collector_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collector_id bigint NOT NULL REFERENCES collectors (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX collector_tokens_collector_id ON collector_tokens (collector_id);

CREATE TABLE collected_data (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collector_id  bigint NOT NULL REFERENCES collectors (id) ON DELETE CASCADE,
    file_key      text NOT NULL UNIQUE,
    original_name text NOT NULL DEFAULT '',
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type  text NOT NULL DEFAULT 'application/octet-stream',
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    owner_id      bigint NOT NULL -- public.users
);
CREATE INDEX collected_data_collector_id ON collected_data (collector_id, id);
CREATE INDEX collected_data_owner_id ON collected_data (owner_id, id);

CREATE TABLE capture_analyses (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collected_data_id bigint NOT NULL REFERENCES collected_data (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress          real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    result            jsonb,
    error             text,
    owner_id          bigint NOT NULL, -- public.users
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);
CREATE INDEX capture_analyses_data_id ON capture_analyses (collected_data_id);
CREATE INDEX capture_analyses_owner_id ON capture_analyses (owner_id, id);
