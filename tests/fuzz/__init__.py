"""Structured, grammar-aware fuzzing of every decoder (see docs/fuzzing.md)."""
