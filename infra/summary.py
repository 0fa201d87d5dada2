"""Prints a one-screen summary of a synthesized cloud assembly: stacks and resource counts."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def summarize(outdir: Path) -> list[tuple[str, str, int, Counter]]:
    """(artifact id, stack name, resource count, count per type) for every stack in the assembly."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    rows = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        types = Counter(r["Type"] for r in template.get("Resources", {}).values())
        name = artifact.get("properties", {}).get("stackName", artifact_id)
        rows.append((artifact_id, name, sum(types.values()), types))
    return rows


def main(argv: list[str]) -> int:
    outdir = Path(argv[1] if len(argv) > 1 else "cdk.out")
    rows = summarize(outdir)
    width = max((len(name) for _, name, _, _ in rows), default=5)
    print(f"\n{'stack':<{width}}  resources")
    for _, name, count, _ in rows:
        print(f"{name:<{width}}  {count:>9}")
    print(f"{'total':<{width}}  {sum(r[2] for r in rows):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
