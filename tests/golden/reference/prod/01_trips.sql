-- trips: load step on `warehouse` (bigquery)

CREATE OR REPLACE TABLE `trips` (
  `vendorid` INT64,
  `lpep_pickup_datetime` DATETIME NOT NULL,
  `passenger_count` INT64,
  `trip_distance` FLOAT64,
  `fare_amount` NUMERIC(10, 2)
);
