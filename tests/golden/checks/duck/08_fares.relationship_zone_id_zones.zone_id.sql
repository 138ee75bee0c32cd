-- fares.relationship(zone_id, zones.zone_id): check step on `local` (duckdb)
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
  *,
  COUNT(*) OVER () AS "_failures"
FROM "fares" AS "_child"
WHERE
  NOT "_child"."zone_id" IS NULL
  AND NOT EXISTS(
    SELECT
      1
    FROM "zones" AS "_parent"
    WHERE
      "_parent"."zone_id" = "_child"."zone_id"
  )
LIMIT 5;
