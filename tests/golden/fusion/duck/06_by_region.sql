-- by_region: sql step on `warehouse` (duckdb)

CREATE OR REPLACE VIEW "by_region" AS
SELECT
  "Region",
  SUM("total") AS "total",
  SUM("n") AS "orders"
FROM "enriched"
GROUP BY
  "Region";
