-- recent_orders: sql step on `warehouse` (duckdb)

CREATE OR REPLACE TABLE "recent_orders" AS
SELECT
  "OrderID",
  "CustomerID",
  "Amount",
  "ordered_at"
FROM "orders"
WHERE
  "ordered_at" >= CAST($since AS DATE);
