SELECT city, active, 'const' AS tag, count(*) AS people, sum(balance) AS balance
FROM people
GROUP BY ALL
