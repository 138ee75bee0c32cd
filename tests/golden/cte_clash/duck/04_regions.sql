-- regions: sql step on `warehouse` (duckdb)
-- fused (ephemeral, inlined as CTEs): regional, big_orders

CREATE OR REPLACE TABLE "regions" AS
WITH "regional_ephemeral" AS (
  SELECT
    "o"."order_id",
    "o"."amount",
    "c"."region"
  FROM "orders" AS "o"
  JOIN "customers" AS "c"
    ON "c"."customer_id" = "o"."customer_id"
), "big_orders_ephemeral" AS (
  SELECT
    "order_id",
    "amount",
    "region"
  FROM "regional_ephemeral" AS "regional"
  WHERE
    "amount" > 50
), "regional" AS (
  SELECT DISTINCT
    "region"
  FROM "customers"
), "big_orders" AS (
  SELECT
    "region",
    COUNT(*) AS "n"
  FROM "big_orders_ephemeral" AS "big_orders"
  GROUP BY
    "region"
)
SELECT
  "r"."region",
  COALESCE("b"."n", 0) AS "big"
FROM "regional" AS "r"
LEFT JOIN "big_orders" AS "b"
  ON "b"."region" = "r"."region";
