-- trips: load step on `warehouse` (postgres)

DROP TABLE IF EXISTS "trips" CASCADE;

CREATE TABLE "trips" (
  "vendorid" INT,
  "lpep_pickup_datetime" TIMESTAMP NOT NULL,
  "passenger_count" INT,
  "trip_distance" DOUBLE PRECISION,
  "fare_amount" DECIMAL(10, 2)
);
