-- by_region: sql step on `warehouse` (postgres)

DROP VIEW IF EXISTS "by_region" CASCADE;

CREATE VIEW "by_region" AS
SELECT
  "Region",
  SUM("total") AS "total",
  SUM("n") AS "orders"
FROM "enriched"
GROUP BY
  "Region";
