-- by_region.to.local: transfer step on `warehouse` (postgres)

SELECT
  *
FROM "by_region";
