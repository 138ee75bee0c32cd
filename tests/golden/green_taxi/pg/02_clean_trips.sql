-- clean_trips: sql step on `warehouse` (postgres)

DROP TABLE IF EXISTS "clean_trips" CASCADE;

CREATE TABLE "clean_trips" AS
SELECT
  *,
  CAST("lpep_pickup_datetime" AS DATE) AS "lpep_pickup_date"
FROM "trips"
WHERE
  "passenger_count" > 0
  AND "trip_distance" > 0
  AND "lpep_pickup_datetime" >= CAST(%(run_date)s AS DATE);
