-- orders: load step on `warehouse` (bigquery)

CREATE OR REPLACE TABLE `orders` (
  `OrderID` INT64 NOT NULL,
  `CustomerID` INT64,
  `Amount` NUMERIC(10, 2),
  `status` STRING,
  `ordered_at` DATETIME
);
