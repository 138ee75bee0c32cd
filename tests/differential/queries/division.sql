-- DuckDB's / is float division for integers and decimals alike.
SELECT n, m, n / m AS q, d / m AS dq, d / 3 AS d3, amount / qty AS each_
FROM numbers, (SELECT amount, qty FROM orders WHERE order_id = 103)
WHERE m <> 0
