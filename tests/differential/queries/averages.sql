-- DuckDB's avg of integers and decimals is a double.
SELECT avg(n) AS an, avg(d) AS ad, avg(x) FILTER (WHERE abs(x) < 1e6) AS ax, stddev_samp(d) AS sd,
  avg(balance) AS ab
FROM numbers, (SELECT avg(balance) AS balance FROM people)
