-- trips: load step on `local` (duckdb)

CREATE OR REPLACE TABLE "trips" (
  "vendorid" INT NOT NULL,
  "zone_id" INT,
  "passenger_count" INT,
  "fare" DECIMAL(10, 2),
  "order" INT
);
