-- An alias list renames the first columns of a SELECT *; the others keep their names.
SELECT a, z, x, s FROM (SELECT * FROM numbers) AS t (a, z)
