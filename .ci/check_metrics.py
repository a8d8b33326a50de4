"""Fail unless every run's metrics JSON exists and every number in it is finite."""

import json
import math
import sys
from pathlib import Path

import yaml


def numbers(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from numbers(value)
    elif isinstance(node, list):
        for value in node:
            yield from numbers(value)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield node


def main() -> int:
    params = yaml.safe_load(Path("params.yaml").read_text())
    out_dir = Path(params.get("evaluate", {}).get("out_dir", "results"))
    datasets = params.get("evaluate", {}).get("datasets", ["synth-r"])
    problems = []
    for run in params["runs"]:
        for dataset in datasets:
            path = out_dir / run / dataset / "metrics.json"
            if not path.is_file():
                problems.append(f"missing {path}")
                continue
            values = list(numbers(json.loads(path.read_text())["settings"]))
            if not values or not all(math.isfinite(v) for v in values):
                problems.append(f"{path}: empty or non-finite metrics")
            else:
                print(f"ok {path} ({len(values)} finite numbers)")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
