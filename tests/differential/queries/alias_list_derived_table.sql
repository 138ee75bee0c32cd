-- TPC-H q13's shape: a column-alias list on a derived table (BigQuery has none).
SELECT c_custkey, c_count
FROM (
  SELECT p.id, count(o.order_id)
  FROM people AS p LEFT JOIN orders AS o ON o.person_id = p.id
  GROUP BY p.id
) AS c_orders (c_custkey, c_count)
ORDER BY c_custkey
