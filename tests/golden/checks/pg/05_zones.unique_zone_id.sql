-- zones.unique(zone_id): check step on `local` (postgres)

SELECT
  "zone_id",
  COUNT(*) AS "_count",
  COUNT(*) OVER () AS "_failures"
FROM "zones"
GROUP BY
  "zone_id"
HAVING
  COUNT(*) > 1
LIMIT 5;
