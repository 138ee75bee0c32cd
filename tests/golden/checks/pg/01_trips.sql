-- trips: load step on `local` (postgres)

DROP TABLE IF EXISTS "trips" CASCADE;

CREATE TABLE "trips" (
  "vendorid" INT NOT NULL,
  "zone_id" INT,
  "passenger_count" INT,
  "fare" DECIMAL(10, 2),
  "order" INT
);
