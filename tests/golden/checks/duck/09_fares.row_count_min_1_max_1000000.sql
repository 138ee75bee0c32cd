-- fares.row_count(min = 1, max = 1000000): check step on `local` (duckdb)
-- fused (ephemeral, inlined as CTEs): fares

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
  "_rows" AS "row_count",
  1 AS "_failures"
FROM (
  SELECT
    COUNT(*) AS "_rows"
  FROM "fares"
) AS "_counted"
WHERE
  "_rows" < 1 OR "_rows" > 1000000;
