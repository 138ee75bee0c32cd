-- green_taxi: export step on `warehouse` (duckdb)

CREATE SCHEMA IF NOT EXISTS "ny_taxi";

CREATE OR REPLACE TABLE "ny_taxi"."green_taxi" AS
SELECT
  *
FROM "snake_trips";
