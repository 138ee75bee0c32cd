-- clean_trips.not_null(VendorID, lpep_pickup_date): check step on `warehouse` (duckdb)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "clean_trips"
WHERE
  "VendorID" IS NULL OR "lpep_pickup_date" IS NULL
LIMIT 5;
