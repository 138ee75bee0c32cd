-- customers: load step on `warehouse` (duckdb)

CREATE OR REPLACE TABLE "customers" (
  "customer_id" INT NOT NULL,
  "region" TEXT
);
