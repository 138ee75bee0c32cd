-- daily_stats: sql step on `warehouse` (bigquery)

CREATE OR REPLACE TABLE `daily_stats` AS
SELECT
  `lpep_pickup_date`,
  COUNT(*) AS `trips`,
  SUM(`fare_amount`) AS `total_fare`,
  AVG(`trip_distance`) AS `avg_distance`
FROM `snake_trips`
GROUP BY
  `lpep_pickup_date`
ORDER BY
  `lpep_pickup_date` NULLS LAST;
