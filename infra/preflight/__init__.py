"""Preflight: what a config needs from its AWS account(s), checked with read-only calls before the first deploy."""
