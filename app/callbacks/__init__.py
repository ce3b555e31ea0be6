"""Dashboard callbacks, one module per panel; each exposes ``register(app, store, cache)``."""
