-- ga-collector's own tables for Search Console. Runs with search_path set to searchConsole.schema
-- (default gsc), whose schema_migrations records this directory's migrations apart from GA4's.
-- The same ledger as GA4's, keyed by the site's URL: the planner, the day writer and the locks
-- are shared, only the key column differs. The per-report relations are created from
-- searchConsole.reports, not here.

-- The columns each report relation was built with.
CREATE TABLE report_definitions (
  report     text PRIMARY KEY,
  dimensions text[] NOT NULL,
  metrics    text[] NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every definition a date was stored under: a changed definition makes due again exactly the
-- dates that lack one of its fields, per site, and every date of another variant (the report's
-- search type and aggregation: `type=web aggregationType=auto`), whose rows are other rows.
CREATE TABLE report_definition_versions (
  id              serial      PRIMARY KEY,
  report          text        NOT NULL,
  dimensions      text[]      NOT NULL,
  metrics         text[]      NOT NULL,
  variant         text        NOT NULL DEFAULT '',
  first_stored_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT report_definition_versions_key UNIQUE (report, dimensions, metrics, variant)
);

-- One row per site, report and date that has been stored (Search Console's Pacific day), written
-- in the same transaction as the date's rows. The data-quality columns mirror GA4's fetch_days;
-- Search Console has nothing they mean, so they stay false.
CREATE TABLE fetch_days (
  site_url                 text        NOT NULL,
  report                   text        NOT NULL,
  date                     date        NOT NULL,
  fetched_at               timestamptz NOT NULL,
  row_count                integer     NOT NULL,
  settled                  boolean     NOT NULL DEFAULT false,
  data_loss_from_other_row boolean     NOT NULL DEFAULT false,
  subject_to_thresholding  boolean     NOT NULL DEFAULT false,
  sampled                  boolean     NOT NULL DEFAULT false,
  sampling                 jsonb,
  time_zone                text,
  currency_code            text,
  definition_id            integer     REFERENCES report_definition_versions (id),
  PRIMARY KEY (site_url, report, date)
);

-- One row per site and report whose last run failed, for `ga-collector status`.
CREATE TABLE job_failures (
  site_url         text        NOT NULL,
  report           text        NOT NULL,
  first_failed_at  timestamptz NOT NULL DEFAULT now(),
  failed_at        timestamptz NOT NULL DEFAULT now(),
  failures         integer     NOT NULL DEFAULT 1,
  error            text        NOT NULL,
  permanent        boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (site_url, report)
);

COMMENT ON TABLE fetch_days IS 'per Search Console site, report and Pacific date: when it was stored, how many rows, whether it left the refresh window';
