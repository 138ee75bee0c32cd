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
ON _target."OrderID" = _source."OrderID"
WHEN MATCHED THEN UPDATE SET "CustomerID" = _source."CustomerID", "Amount" = _source."Amount", "ordered_at" = _source."ordered_at"
WHEN NOT MATCHED THEN INSERT ("OrderID", "CustomerID", "Amount", "ordered_at") VALUES (_source."OrderID", _source."CustomerID", _source."Amount", _source."ordered_at");
