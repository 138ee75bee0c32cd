-- green_taxi: export step on `warehouse` (postgres)

CREATE SCHEMA IF NOT EXISTS "ny_taxi";

DROP TABLE IF EXISTS "ny_taxi"."green_taxi" CASCADE;

CREATE TABLE "ny_taxi"."green_taxi" AS
SELECT
  *
FROM "snake_trips";
