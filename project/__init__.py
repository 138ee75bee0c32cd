"""The project layer, shared by the compiler and the runtime: the root error type and secrets."""
