-- clean_trips.into.snake_trips: transfer step on `warehouse` (bigquery)

SELECT
  *
FROM `clean_trips`;
