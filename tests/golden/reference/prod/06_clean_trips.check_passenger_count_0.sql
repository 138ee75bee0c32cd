-- clean_trips.check("passenger_count > 0"): check step on `warehouse` (bigquery)

SELECT
  *,
  COUNT(*) OVER () AS `_failures`
FROM `clean_trips`
WHERE
  NOT (
    `passenger_count` > 0
  )
LIMIT 5;
