"""Layered configuration: DRfC env files, YAML profiles, environment and flags, with provenance."""
