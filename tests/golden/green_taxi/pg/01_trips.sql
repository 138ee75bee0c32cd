-- trips: load step on `warehouse` (postgres)

DROP TABLE IF EXISTS "trips" CASCADE;

CREATE TABLE "trips" (
  "VendorID" INT,
  "lpep_pickup_datetime" TIMESTAMP NOT NULL,
  "lpep_dropoff_datetime" TIMESTAMP,
  "store_and_fwd_flag" VARCHAR,
  "RatecodeID" INT,
  "PULocationID" INT,
  "DOLocationID" INT,
  "passenger_count" INT,
  "trip_distance" DOUBLE PRECISION,
  "fare_amount" DECIMAL(10, 2),
  "extra" DECIMAL(10, 2),
  "mta_tax" DECIMAL(10, 2),
  "tip_amount" DECIMAL(10, 2),
  "tolls_amount" DECIMAL(10, 2),
  "ehail_fee" DECIMAL(10, 2),
  "improvement_surcharge" DECIMAL(10, 2),
  "total_amount" DECIMAL(10, 2),
  "payment_type" INT,
  "trip_type" INT,
  "congestion_surcharge" DECIMAL(10, 2)
);
