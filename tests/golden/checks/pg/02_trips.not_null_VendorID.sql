-- trips.not_null(VendorID): check step on `local` (postgres)

SELECT
  *,
  COUNT(*) OVER () AS "_failures"
FROM "trips"
WHERE
  "vendorid" IS NULL
LIMIT 5;
