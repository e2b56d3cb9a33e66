-- The router registry: published routers, rollouts, and the instances
-- that follow them. Created in the registry's own schema (the connection's
-- search_path names it), so names here are unqualified.

CREATE TABLE routers (
    name          TEXT        NOT NULL,
    version       INTEGER     NOT NULL CHECK (version > 0),
    module        BYTEA       NOT NULL,
    sha256        TEXT        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    config        JSONB       NOT NULL DEFAULT 'null'::jsonb,
    published_by  TEXT        NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE rollouts (
    id                BIGSERIAL   PRIMARY KEY,
    router            TEXT        NOT NULL,
    version           INTEGER     NOT NULL,
    -- The version instances outside the canary run (and every instance
    -- once the rollout is aborted, rolled back or failed); NULL: none.
    previous_version  INTEGER,
    percent           SMALLINT    NOT NULL CHECK (percent BETWEEN 0 AND 100),
    state             TEXT        NOT NULL
        CHECK (state IN ('rolling', 'complete', 'aborted', 'rolled_back', 'failed')),
    reason            TEXT,
    started_by        TEXT        NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (router, version) REFERENCES routers (name, version),
    FOREIGN KEY (router, previous_version) REFERENCES routers (name, version)
);
CREATE INDEX rollouts_router_latest ON rollouts (router, id DESC);

CREATE TABLE instances (
    instance_id     TEXT        PRIMARY KEY,
    service         TEXT        NOT NULL,
    host            TEXT        NOT NULL,
    router          TEXT        NOT NULL,
    version         INTEGER,
    sha256          TEXT,
    generation      BIGINT      NOT NULL,
    tier            TEXT,
    decisions       BIGINT      NOT NULL DEFAULT 0,
    faults          BIGINT,
    last_error      TEXT,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX instances_service ON instances (service, router);

-- Every change of a rollout is announced on the channel
-- `<schema>_changes`, with the router's name as payload; instances
-- LISTEN on it.
CREATE FUNCTION announce_rollout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_changes', NEW.router);
    RETURN NEW;
END;
$$;

CREATE TRIGGER rollouts_announce
    AFTER INSERT OR UPDATE ON rollouts
    FOR EACH ROW EXECUTE FUNCTION announce_rollout();
