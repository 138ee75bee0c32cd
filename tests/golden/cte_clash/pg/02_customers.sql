-- customers: load step on `warehouse` (postgres)

DROP TABLE IF EXISTS "customers" CASCADE;

CREATE TABLE "customers" (
  "customer_id" INT NOT NULL,
  "region" VARCHAR
);
