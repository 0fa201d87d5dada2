"""Access harness: what AWS would decide for the calls the platform makes, through every policy on the path.

The synthesized templates of an environment are resolved for a fake account and region
(`resolver`), their identity, resource, endpoint and key policies collected (`world`), and each
call is decided by `@cloud-copilot/iam-simulate` in a Node.js process of its own (`simulator`;
AGPL-3.0, a test-time tool: never imported by the app, never shipped).
"""
