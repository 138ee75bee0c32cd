-- per_borough: sql step on `local` (postgres)
-- fused (ephemeral, inlined as CTEs): fares

DROP TABLE IF EXISTS "per_borough" CASCADE;

CREATE TABLE "per_borough" AS
WITH "fares" AS (
  SELECT
    "t"."vendorid",
    "t"."zone_id",
    "t"."fare",
    "t"."order" AS "ord",
    "z"."borough"
  FROM "trips" AS "t"
  LEFT JOIN "zones" AS "z"
    USING ("zone_id")
  WHERE
    "t"."passenger_count" BETWEEN 1 AND 6
)
SELECT
  "borough",
  COUNT(*) AS "trips",
  AVG("fare") AS "avg_fare"
FROM "fares"
GROUP BY
  "borough";
