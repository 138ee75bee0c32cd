-- zones: load step on `local` (bigquery)

CREATE OR REPLACE TABLE `zones` (
  `zone_id` INT64 NOT NULL,
  `name` STRING,
  `borough` STRING
);
