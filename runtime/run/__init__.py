"""A run of a plan: the executor, its stages, and errors mapped back to the spec."""
