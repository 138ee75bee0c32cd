"""The dialect rewrites, one module per family of constructs; `rewrite.rewrite` applies them."""
