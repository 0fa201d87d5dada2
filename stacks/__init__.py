"""Deployable stacks, one module each, and the function that wires them into an app."""
