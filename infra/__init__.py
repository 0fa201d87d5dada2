"""Reusable building blocks: configuration, instance catalog, constructs and rule packs."""
