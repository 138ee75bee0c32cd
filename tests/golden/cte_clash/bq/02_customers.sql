-- customers: load step on `warehouse` (bigquery)

CREATE OR REPLACE TABLE `customers` (
  `customer_id` INT64 NOT NULL,
  `region` STRING
);
