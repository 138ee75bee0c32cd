-- recent: export step on `warehouse` (postgres)

CREATE SCHEMA IF NOT EXISTS "mart";

CREATE TABLE IF NOT EXISTS "mart"."recent_orders" AS
SELECT * FROM (
SELECT
  *
FROM "recent_orders"
) AS _rows
LIMIT 0;

MERGE INTO "mart"."recent_orders" AS _target
USING (
SELECT
  *
FROM "recent_orders"
) AS _source
ON _target."orderid" = _source."orderid"
WHEN MATCHED THEN UPDATE SET "customerid" = _source."customerid", "amount" = _source."amount", "ordered_at" = _source."ordered_at"
WHEN NOT MATCHED THEN INSERT ("orderid", "customerid", "amount", "ordered_at") VALUES (_source."orderid", _source."customerid", _source."amount", _source."ordered_at");
