SELECT status, qty FROM orders ORDER BY ALL
