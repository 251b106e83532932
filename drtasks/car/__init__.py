"""The physical car's web console: pinned TLS, login, upload, list and load models (inv car-push)."""
