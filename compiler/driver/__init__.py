"""The compiler's driver: `flowc check`, `flowc compile`, their caches, explain and graph."""
