"""Stage 3, plan: a checked spec becomes a `Plan` of steps for one profile, with fingerprints."""
