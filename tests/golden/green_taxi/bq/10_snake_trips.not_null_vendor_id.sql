-- snake_trips.not_null(vendor_id): check step on `warehouse` (bigquery)

SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `snake_trips`
WHERE
  `vendor_id` IS NULL
LIMIT 5;
