-- by_day: sql step on `warehouse` (postgres)

DROP TABLE IF EXISTS "by_day" CASCADE;

CREATE TABLE "by_day" AS
SELECT
  "lpep_pickup_date",
  COUNT(*) AS "trips",
  SUM("passenger_count") AS "passengers",
  SUM("fare_amount") AS "total_fare",
  AVG("trip_distance") AS "avg_distance"
FROM "clean_trips"
GROUP BY
  "lpep_pickup_date";
