-- region_copy: sql step on `local` (duckdb)

CREATE OR REPLACE TABLE "region_copy" AS
SELECT
  *
FROM "by_region"
ORDER BY
  "Region";
