"""The project layer both halves import: flow.toml's model, env expansion, secrets, engines."""
