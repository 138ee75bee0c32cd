-- zones: load step on `local` (duckdb)

CREATE OR REPLACE TABLE "zones" (
  "zone_id" INT NOT NULL,
  "name" TEXT,
  "borough" TEXT
);
