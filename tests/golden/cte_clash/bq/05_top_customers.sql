-- top_customers: sql step on `warehouse` (bigquery)
-- fused (ephemeral, inlined as CTEs): top

CREATE OR REPLACE TABLE `top_customers` AS
WITH `top_ephemeral` AS (
  SELECT
    `customer_id`,
    MAX(`amount`) AS `best`
  FROM `orders`
  GROUP BY
    `customer_id`
)
SELECT
  `top`.`customer_id`,
  `top`.`region`,
  `t`.`best`
FROM `customers` AS `top`
JOIN `top_ephemeral` AS `t`
  ON `t`.`customer_id` = `top`.`customer_id`;
