-- orders: load step on `warehouse` (duckdb)

CREATE OR REPLACE TABLE "orders" (
  "OrderID" INT NOT NULL,
  "CustomerID" INT,
  "Amount" DECIMAL(10, 2),
  "status" TEXT,
  "ordered_at" TIMESTAMP
);
