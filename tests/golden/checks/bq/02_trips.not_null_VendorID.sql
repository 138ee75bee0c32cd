-- trips.not_null(VendorID): check step on `local` (bigquery)

SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `trips`
WHERE
  `vendorid` IS NULL
LIMIT 5;
