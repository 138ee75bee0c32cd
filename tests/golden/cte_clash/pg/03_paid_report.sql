-- paid_report: sql step on `warehouse` (postgres)
-- fused (ephemeral, inlined as CTEs): paid

DROP TABLE IF EXISTS "paid_report" CASCADE;

CREATE TABLE "paid_report" AS
WITH "paid_ephemeral" AS (
  SELECT
    "order_id",
    "customer_id",
    "amount"
  FROM "orders"
  WHERE
    "status" <> 'cancelled'
), "paid" AS (
  SELECT
    "customer_id",
    "amount" * 2 AS "doubled"
  FROM "paid_ephemeral" AS "paid"
  WHERE
    "amount" > 0
)
SELECT
  "customer_id",
  SUM("doubled") AS "total"
FROM "paid"
GROUP BY
  "customer_id";
