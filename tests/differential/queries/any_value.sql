SELECT person_id, any_value(status) IS NOT NULL AS has_status, count(*) AS n
FROM orders
WHERE person_id IS NOT NULL
GROUP BY person_id
