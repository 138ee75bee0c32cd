-- daily_stats: sql step on `warehouse` (postgres)

DROP TABLE IF EXISTS "daily_stats" CASCADE;

CREATE TABLE "daily_stats" AS
SELECT
  "lpep_pickup_date",
  COUNT(*) AS "trips",
  SUM("fare_amount") AS "total_fare",
  AVG("trip_distance") AS "avg_distance"
FROM "snake_trips"
GROUP BY
  "lpep_pickup_date"
ORDER BY
  "lpep_pickup_date";
