"""Prints a one-screen summary of a synthesized cloud assembly: stacks, resource counts and estimated cost."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from infra.assembly import cost, reader


def summarize(cloud: reader.Assembly) -> list[tuple[str, int, Counter[str]]]:
    """(stack name, resource count, count per type) for every stack in the assembly."""
    rows = []
    for name, stack in cloud.stacks.items():
        types = Counter(r["Type"] for r in stack.resources.values())
        rows.append((name, sum(types.values()), types))
    return rows


def main(argv: list[str]) -> int:
    cloud = reader.load(Path(argv[1] if len(argv) > 1 else "cdk.out"))
    rows = summarize(cloud)
    width = max((len(name) for name, _, _ in rows), default=5)
    print(f"\n{'stack':<{width}}  resources")
    for name, count, _ in rows:
        print(f"{name:<{width}}  {count:>9}")
    print(f"{'total':<{width}}  {sum(r[1] for r in rows):>9}")
    lines = cost.estimate({name: stack.template for name, stack in cloud.stacks.items()})
    print(f"\nestimated cost ({cost.PRICE_REGION} list prices; usage-based charges not included)")
    for row in cost.format_lines(lines):
        print(f"  {row}")
    print(f"  monthly total: ${cost.monthly_total(lines):,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
