-- enriched: sql step on `warehouse` (postgres)
-- fused (ephemeral, inlined as CTEs): valid_orders, order_totals

DROP TABLE IF EXISTS "enriched" CASCADE;

CREATE TABLE "enriched" AS
WITH "valid_orders" AS (
  SELECT
    *
  FROM "orders"
  WHERE
    "status" NOT LIKE 'cancel%%'
    AND "amount" >= CAST(%(min_amount)s AS DOUBLE PRECISION)
), "order_totals" AS (
  SELECT
    "customerid",
    SUM("amount") AS "total",
    COUNT(*) AS "n"
  FROM "valid_orders" AS "valid_orders"
  GROUP BY
    "customerid"
), "big" AS (
  SELECT
    *
  FROM "order_totals"
  WHERE
    "total" > 100
)
SELECT
  "c"."name",
  "c"."region",
  "b"."customerid",
  "b"."total",
  "b"."n"
FROM "big" AS "b"
JOIN "customers" AS "c"
  ON "c"."customerid" = "b"."customerid";
