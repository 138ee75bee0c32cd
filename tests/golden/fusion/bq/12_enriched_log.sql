-- enriched_log: export step on `local` (duckdb)

CREATE TABLE IF NOT EXISTS "main"."enriched_log" AS
SELECT * FROM (
SELECT
  *
FROM "enriched"
) AS _rows
LIMIT 0;

INSERT INTO "main"."enriched_log"
SELECT
  *
FROM "enriched";
