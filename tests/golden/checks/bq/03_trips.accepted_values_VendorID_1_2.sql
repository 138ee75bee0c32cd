-- trips.accepted_values(VendorID, [1, 2]): check step on `local` (bigquery)

SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `trips`
WHERE
  NOT `vendorid` IS NULL AND NOT `vendorid` IN (1, 2)
LIMIT 5;
