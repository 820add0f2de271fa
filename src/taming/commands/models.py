"""`taming models`: the registry of released models and which are present locally.

taming models            # table: name, kind, present?, local folder
taming models --urls     # also where each is published
taming models --json     # machine-readable
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered pretrained models and local weights")
    p.add_argument("--root", help="weights root (default: $TAMING_HOME or ~/.cache/taming)")
    p.add_argument("--urls", action="store_true", help="show where each model is published")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from taming.registry import list_models, weights_root

    rows = list_models(args.root)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"weights root: {args.root or weights_root()}")
    for r in rows:
        state = "present" if r["present"] else "missing"
        line = f"{r['name']:<{width}}  {r['kind']:<11}  {state:<7}  {r['folder']}"
        print(line + (f"\n{'':<{width}}  {r['url']}" if args.urls else ""))
    n = sum(r["present"] for r in rows)
    print(f"{n} of {len(rows)} present; taming.create_model(NAME, pretrained=True) loads one")
    return 0
