-- recent_orders: sql step on `warehouse` (postgres)

DROP TABLE IF EXISTS "recent_orders" CASCADE;

CREATE TABLE "recent_orders" AS
SELECT
  "orderid",
  "customerid",
  "amount",
  "ordered_at"
FROM "orders"
WHERE
  "ordered_at" >= CAST(%(since)s AS DATE);
