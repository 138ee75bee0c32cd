WITH totals (person, total, orders) AS (
  SELECT person_id, sum(amount), count(*) FROM orders GROUP BY person_id
)
SELECT person, total, orders FROM totals WHERE person IS NOT NULL
