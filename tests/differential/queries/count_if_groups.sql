SELECT status, count_if(qty > 1) AS many, count_if(discount IS NULL) AS no_discount
FROM orders
GROUP BY status
