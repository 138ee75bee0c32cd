-- borough_table: export step on `local` (postgres)

CREATE SCHEMA IF NOT EXISTS "reports";

DROP TABLE IF EXISTS "reports"."per_borough" CASCADE;

CREATE TABLE "reports"."per_borough" AS
SELECT
  *
FROM "per_borough";
