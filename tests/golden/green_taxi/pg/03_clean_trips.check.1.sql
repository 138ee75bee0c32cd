-- clean_trips.check.1: check step on `warehouse` (postgres)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "clean_trips"
WHERE
  "VendorID" IS NULL OR "lpep_pickup_date" IS NULL
LIMIT 5;
