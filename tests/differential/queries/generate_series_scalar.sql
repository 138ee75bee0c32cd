SELECT i, s FROM range(1, 4) AS t (i), (SELECT 'x' AS s)
