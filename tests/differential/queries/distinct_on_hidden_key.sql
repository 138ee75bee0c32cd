SELECT DISTINCT ON (status) status, amount
FROM orders
ORDER BY status, ordered_at DESC, order_id
