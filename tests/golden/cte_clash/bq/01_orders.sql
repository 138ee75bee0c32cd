-- orders: load step on `warehouse` (bigquery)

CREATE OR REPLACE TABLE `orders` (
  `order_id` INT64 NOT NULL,
  `customer_id` INT64,
  `amount` FLOAT64,
  `status` STRING
);
