-- Postgres has no round(double precision, integer) and rounds doubles half to even.
SELECT n, m,
  round(CAST(n AS DOUBLE) / m, 2) AS ratio,
  round(x) AS rx,
  round(x, 1) AS rx1,
  round(x, -1) AS rx_1,
  round(d, 1) AS rd
FROM numbers
