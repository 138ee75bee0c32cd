-- trips: load step on `warehouse` (bigquery)

CREATE OR REPLACE TABLE `trips` (
  `VendorID` INT64,
  `lpep_pickup_datetime` DATETIME NOT NULL,
  `lpep_dropoff_datetime` DATETIME,
  `store_and_fwd_flag` STRING,
  `RatecodeID` INT64,
  `PULocationID` INT64,
  `DOLocationID` INT64,
  `passenger_count` INT64,
  `trip_distance` FLOAT64,
  `fare_amount` NUMERIC(10, 2),
  `extra` NUMERIC(10, 2),
  `mta_tax` NUMERIC(10, 2),
  `tip_amount` NUMERIC(10, 2),
  `tolls_amount` NUMERIC(10, 2),
  `ehail_fee` NUMERIC(10, 2),
  `improvement_surcharge` NUMERIC(10, 2),
  `total_amount` NUMERIC(10, 2),
  `payment_type` INT64,
  `trip_type` INT64,
  `congestion_surcharge` NUMERIC(10, 2)
);
