-- green_taxi: export step on `warehouse` (bigquery)

CREATE SCHEMA IF NOT EXISTS `ny_taxi`;

CREATE OR REPLACE TABLE `ny_taxi`.`green_taxi`
PARTITION BY `lpep_pickup_date`
CLUSTER BY `vendor_id` AS
SELECT
  *
FROM `snake_trips`;
