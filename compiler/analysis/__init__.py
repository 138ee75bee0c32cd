"""Stage 2, analyze: bind names, infer columns and types, check SQL, the DAG, paths and tests."""
