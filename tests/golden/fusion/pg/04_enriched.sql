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
    AND "Amount" >= CAST(%(min_amount)s AS DOUBLE PRECISION)
), "order_totals" AS (
  SELECT
    "CustomerID",
    SUM("Amount") AS "total",
    COUNT(*) AS "n"
  FROM "valid_orders"
  GROUP BY
    "CustomerID"
), "big" AS (
  SELECT
    *
  FROM "order_totals"
  WHERE
    "total" > 100
)
SELECT
  "c"."Name",
  "c"."Region",
  "b"."CustomerID",
  "b"."total",
  "b"."n"
FROM "big" AS "b"
JOIN "customers" AS "c"
  ON "c"."CustomerID" = "b"."CustomerID";
