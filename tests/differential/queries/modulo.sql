-- % keeps the dividend's sign; of doubles it is fmod.
SELECT n, m, n % m AS r, x % 2 AS xr, d % 2 AS dr, b % m AS br FROM numbers WHERE m <> 0
