-- snake_trips.check.1: check step on `warehouse` (postgres)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "snake_trips"
WHERE
  "vendor_id" IS NULL
LIMIT 5;
