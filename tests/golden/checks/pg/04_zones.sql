-- zones: load step on `local` (postgres)

DROP TABLE IF EXISTS "zones" CASCADE;

CREATE TABLE "zones" (
  "zone_id" INT NOT NULL,
  "name" VARCHAR,
  "borough" VARCHAR
);
