SELECT n, m, n // m AS q, b // m AS bq, x // 2 AS xq, d // 2 AS dq FROM numbers WHERE m <> 0
