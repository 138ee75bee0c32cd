-- orders: load step on `warehouse` (duckdb)

CREATE OR REPLACE TABLE "orders" (
  "order_id" INT NOT NULL,
  "customer_id" INT,
  "amount" DOUBLE,
  "status" TEXT
);
