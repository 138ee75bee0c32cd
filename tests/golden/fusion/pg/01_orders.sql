-- orders: load step on `warehouse` (postgres)

DROP TABLE IF EXISTS "orders" CASCADE;

CREATE TABLE "orders" (
  "orderid" INT NOT NULL,
  "customerid" INT,
  "amount" DECIMAL(10, 2),
  "status" VARCHAR,
  "ordered_at" TIMESTAMP
);
