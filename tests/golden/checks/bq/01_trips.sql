-- trips: load step on `local` (bigquery)

CREATE OR REPLACE TABLE `trips` (
  `vendorid` INT64 NOT NULL,
  `zone_id` INT64,
  `passenger_count` INT64,
  `fare` NUMERIC(10, 2),
  `order` INT64
);
