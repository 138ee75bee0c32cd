-- customers: load step on `local` (duckdb)

CREATE OR REPLACE TABLE "customers" (
  "CustomerID" INT NOT NULL,
  "Name" TEXT,
  "Region" TEXT
);
