-- DuckDB's unsigned and 128-bit integers: a wider type on the other engines.
SELECT n, CAST(n AS UTINYINT) AS u8, CAST(n AS UINTEGER) AS u32, CAST(b AS UBIGINT) AS u64,
  CAST(n AS USMALLINT) AS u16
FROM numbers
WHERE n >= 0 AND b >= 0
