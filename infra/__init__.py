"""Reusable parts by kind: config, catalog (facts and names), constructs, checks, assembly (tools)."""
