-- What every daemon on this database knows of a property's Google quota, so that daemons sharing
-- the database (and a restarted `run --once`) spend one budget instead of one each. `property`
-- is the API's key of the property as text: a GA4 property id, and for another API its own key
-- (a Search Console site URL). Google allows 10 server errors per project and property an hour
-- (Data API quotas, developers.google.com/analytics/devguides/reporting/data/v1/quotas).
--
-- quota_state: one row per property that answered a server error in the last hour, or is deferred.
--   server_errors: when its 5xx answers came, oldest first; entries older than an hour are dropped
--     whenever the row is written, and rows with nothing left in them are pruned.
--   claims: requests sent while it had recent server errors, each until it expires (its deadline),
--     so the budget counts the requests in flight too and daemons cannot overspend it together.
--   deferred_until, deferral_kind, deferral_reason: leave the property alone until then
--     (server_errors, quota_day, quota_hour: no request at all; quota_low: no new backlog dates).
CREATE TABLE quota_state (
  property         text          PRIMARY KEY,
  server_errors    timestamptz[] NOT NULL DEFAULT '{}',
  claims           timestamptz[] NOT NULL DEFAULT '{}',
  deferred_until   timestamptz,
  deferral_kind    text,
  deferral_reason  text
);

-- The last propertyQuota Google answered for each property (the Data API's JSON), and when: it
-- seeds ga_collector_quota_tokens_remaining at start-up for the windows that have not reset since.
CREATE TABLE quota_seen (
  property  text        PRIMARY KEY,
  quota     jsonb       NOT NULL,
  seen_at   timestamptz NOT NULL
);
