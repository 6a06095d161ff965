-- Analytics rollups (GET /v1/analytics): counts per day, per user and per tenant, kept as
-- (dimension, key) -> n facts. Reading 90 days of a tenant reads a few hundred rows per day
-- instead of every turn, and the counts outlive the turns' retention (90 days by default).
-- They are derived from the turns, replies, sends and delivery statuses only (rebuilt for
-- the user-days that changed since the last refresh), so refreshing twice changes nothing.
CREATE TABLE analytics_user_facts (
    tenant_id  text   NOT NULL,
    user_id    text   NOT NULL,
    day        date   NOT NULL,   -- UTC
    dim        text   NOT NULL,   -- messages, intent, language, latency, replies, tokens, active, conversations, whatsapp
    key        text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (tenant_id, user_id, day, dim, key)
);
-- Active users of a week or month: distinct users over the days of a tenant.
CREATE INDEX analytics_user_facts_active ON analytics_user_facts (tenant_id, day) WHERE dim = 'active';

-- The tenant's sums of the user facts, moved by the difference each refreshed user-day made.
CREATE TABLE analytics_tenant_facts (
    tenant_id  text   NOT NULL,
    day        date   NOT NULL,
    dim        text   NOT NULL,
    key        text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (tenant_id, day, dim, key)
);

-- A tenant's reply latency percentiles per day, week and month (percentile_cont over the latency
-- facts), recomputed for the periods a refresh touched: 90 days by day read 90 rows, not every
-- latency bucket of 90 days.
CREATE TABLE analytics_tenant_latency (
    tenant_id  text             NOT NULL,
    period     text             NOT NULL CHECK (period IN ('day', 'week', 'month')),
    start      date             NOT NULL,
    n          bigint           NOT NULL,
    p50        double precision NOT NULL,
    p95        double precision NOT NULL,
    PRIMARY KEY (tenant_id, period, start)
);

-- Where each tenant's last refresh started: the next one looks at what changed since (less an
-- overlap for transactions that began before it and committed after).
CREATE TABLE analytics_refreshes (
    tenant_id     text PRIMARY KEY,
    refreshed_at  timestamptz NOT NULL
);

-- Reply latency in buckets: exact below 100 ms, then 1% wide, so a percentile read from the
-- buckets is within 0.5% of the exact one and a month of replies fits in a few hundred rows.
CREATE FUNCTION analytics_latency_bucket(ms integer) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN ms < 100 THEN greatest(ms, 0) ELSE 100 + floor(ln(ms / 100.0) / ln(1.01))::integer END $$;
-- What a bucket stands for: the value itself below 100 ms, else the geometric middle of its range.
CREATE FUNCTION analytics_latency_value(bucket integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN bucket < 100 THEN bucket::double precision ELSE 100 * power(1.01::double precision, bucket - 99.5) END $$;

-- What changed since a refresh, found through indexes: turns recorded or deleted (existing
-- indexes), replies published, sends settled, delivery statuses received.
CREATE INDEX replies_published ON replies (published_at);
CREATE INDEX reply_sends_updated ON reply_sends (updated_at);
CREATE INDEX reply_sends_wamid ON reply_sends (tenant_id, wamid) WHERE wamid IS NOT NULL;
ALTER TABLE delivery_statuses ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX delivery_statuses_recorded ON delivery_statuses (recorded_at);
CREATE INDEX erasure_requests_completed ON erasure_requests (completed_at) WHERE completed_at IS NOT NULL;
