-- orders: load step on `warehouse` (postgres)

DROP TABLE IF EXISTS "orders" CASCADE;

CREATE TABLE "orders" (
  "OrderID" INT NOT NULL,
  "CustomerID" INT,
  "Amount" DECIMAL(10, 2),
  "status" VARCHAR,
  "ordered_at" TIMESTAMP
);
