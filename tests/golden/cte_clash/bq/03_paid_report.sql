-- paid_report: sql step on `warehouse` (bigquery)
-- fused (ephemeral, inlined as CTEs): paid

CREATE OR REPLACE TABLE `paid_report` AS
WITH `paid_ephemeral` AS (
  SELECT
    `order_id`,
    `customer_id`,
    `amount`
  FROM `orders`
  WHERE
    `status` <> 'cancelled'
), `paid` AS (
  SELECT
    `customer_id`,
    `amount` * 2 AS `doubled`
  FROM `paid_ephemeral` AS `paid`
  WHERE
    `amount` > 0
)
SELECT
  `customer_id`,
  SUM(`doubled`) AS `total`
FROM `paid`
GROUP BY
  `customer_id`;
