-- recent_orders: sql step on `warehouse` (postgres)

DROP TABLE IF EXISTS "recent_orders" CASCADE;

CREATE TABLE "recent_orders" AS
SELECT
  "OrderID",
  "CustomerID",
  "Amount",
  "ordered_at"
FROM "orders"
WHERE
  "ordered_at" >= CAST(%(since)s AS DATE);

-- later runs (incremental, merge): the statements above build the table whole on the
-- first run and with --full-refresh; afterwards these add the new rows, from flowc_since
-- (the newest ordered_at less the lookback) on

SELECT MAX("ordered_at") AS watermark FROM "recent_orders";

DROP TABLE IF EXISTS pg_temp."_flowc_new_rows";

CREATE TEMP TABLE "_flowc_new_rows" AS
SELECT * FROM (
SELECT
  "OrderID",
  "CustomerID",
  "Amount",
  "ordered_at"
FROM "orders"
WHERE
  "ordered_at" >= CAST(%(since)s AS DATE)
) AS _query
WHERE _query."ordered_at" >= %(flowc_since)s;

SELECT "OrderID" FROM pg_temp."_flowc_new_rows" AS _new GROUP BY "OrderID" HAVING COUNT(*) > 1 LIMIT 1;

DELETE FROM "recent_orders" AS _old WHERE EXISTS (
SELECT 1 FROM pg_temp."_flowc_new_rows" AS _new WHERE _new."OrderID" = _old."OrderID"
);

INSERT INTO "recent_orders"
SELECT * FROM pg_temp."_flowc_new_rows";

DROP TABLE pg_temp."_flowc_new_rows";
