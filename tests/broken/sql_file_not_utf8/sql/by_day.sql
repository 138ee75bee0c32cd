-- déjà vu
SELECT id, SUM(amount) AS amount FROM trips GROUP BY id
