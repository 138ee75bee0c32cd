-- enriched.to.local: transfer step on `warehouse` (postgres)

SELECT
  *
FROM "enriched";
