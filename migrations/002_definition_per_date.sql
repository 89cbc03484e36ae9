-- Every stored date remembers the report definition it was fetched with. A changed definition
-- then makes due again exactly the dates that lack one of its fields, per property, and only for
-- the properties that use the report; a definition is recorded here when its first date is stored.
CREATE TABLE report_definition_versions (
  id              serial      PRIMARY KEY,
  report          text        NOT NULL,
  dimensions      text[]      NOT NULL,
  metrics         text[]      NOT NULL,
  first_stored_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (report, dimensions, metrics)
);

ALTER TABLE fetch_days ADD COLUMN definition_id integer REFERENCES report_definition_versions (id);

-- Dates stored before this migration were fetched with the definition report_definitions holds
-- (the ledger of a report whose definition grew was cleared then, so nothing older is left).
INSERT INTO report_definition_versions (report, dimensions, metrics, first_stored_at)
  SELECT report, dimensions, metrics, updated_at FROM report_definitions;
UPDATE fetch_days f SET definition_id = v.id FROM report_definition_versions v WHERE v.report = f.report;

COMMENT ON TABLE report_definitions IS 'per report: the definition its relation was last written with';
COMMENT ON COLUMN fetch_days.definition_id IS 'the report definition this date was fetched with (report_definition_versions)';
