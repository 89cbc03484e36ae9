-- ga-collector's own tables. Runs with search_path set to the configured schema.
-- The per-report relations are created from the configured report definitions, not here.

-- What is known about each property, from the Data API's response metadata.
CREATE TABLE properties (
  property_id   text PRIMARY KEY,
  time_zone     text NOT NULL,
  currency_code text,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per property, report and date that has been stored: the ledger the planner reads to
-- find gaps and the refresh window, written in the same transaction as the date's rows.
CREATE TABLE fetch_days (
  property_id              text        NOT NULL,
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
  PRIMARY KEY (property_id, report, date)
);

-- The columns each report relation was built with, so a changed definition can be migrated.
CREATE TABLE report_definitions (
  report     text PRIMARY KEY,
  dimensions text[] NOT NULL,
  metrics    text[] NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
