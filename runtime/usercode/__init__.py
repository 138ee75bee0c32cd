"""User Python code: blocks called in process or isolated, and how their endings are told."""
