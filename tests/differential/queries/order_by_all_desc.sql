SELECT person_id, order_id FROM orders ORDER BY ALL DESC
