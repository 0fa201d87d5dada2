"""Building blocks the stacks compose: buckets, functions, queues, roles, Lake Formation grants, the workspace."""
