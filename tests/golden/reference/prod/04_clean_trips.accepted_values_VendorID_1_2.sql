-- clean_trips.accepted_values(VendorID, [1, 2]): check step on `warehouse` (bigquery)

SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `clean_trips`
WHERE
  NOT `vendorid` IS NULL AND NOT `vendorid` IN (1, 2)
LIMIT 5;
