-- orders: load step on `warehouse` (postgres)

DROP TABLE IF EXISTS "orders" CASCADE;

CREATE TABLE "orders" (
  "order_id" INT NOT NULL,
  "customer_id" INT,
  "amount" DOUBLE PRECISION,
  "status" VARCHAR
);
