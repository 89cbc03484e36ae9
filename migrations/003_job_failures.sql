-- The failing runs the database knows of, for `ga-collector status` (which reads the database
-- alone): one row per property and report whose last run failed, written by the runner when a
-- run fails and removed when a later run of it succeeds. A run aborted by shutdown or a reload is
-- not a failure; a failure while the database itself is down cannot be recorded here.
CREATE TABLE job_failures (
  property_id      text        NOT NULL,
  report           text        NOT NULL,
  first_failed_at  timestamptz NOT NULL DEFAULT now(),
  failed_at        timestamptz NOT NULL DEFAULT now(),
  failures         integer     NOT NULL DEFAULT 1,
  error            text        NOT NULL,
  permanent        boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (property_id, report)
);
