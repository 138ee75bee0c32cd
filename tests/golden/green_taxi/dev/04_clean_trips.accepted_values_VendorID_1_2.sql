-- clean_trips.accepted_values(VendorID, [1, 2]): check step on `warehouse` (duckdb)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "clean_trips"
WHERE
  NOT "VendorID" IS NULL AND NOT "VendorID" IN (1, 2)
LIMIT 5;
