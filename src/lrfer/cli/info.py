"""Listings: ``lrfer models``, ``lrfer recipes`` and ``lrfer data info``."""

from __future__ import annotations

import json

from ._common import Bars, load_data, print_table


def add_parsers(sub) -> None:
    sub.add_parser("models", help="list registered models").set_defaults(func=cmd_models)
    sub.add_parser("recipes", help="list shipped training recipes").set_defaults(func=cmd_recipes)

    sp = sub.add_parser("data", help="dataset tools")
    dsub = sp.add_subparsers(dest="data_command", required=True)
    ip = dsub.add_parser("info", help="classes, splits and counts of a dataset")
    ip.add_argument("data")
    ip.add_argument("--format")
    ip.add_argument("--option", action="append", default=[])
    ip.add_argument("--no-progress", action="store_true")
    ip.set_defaults(func=cmd_data_info)


def cmd_models(args) -> int:
    from ..runtime.catalog import read_catalog

    print_table(read_catalog(), ["model", "kind", "params", "about"])
    return 0


def cmd_recipes(args) -> int:
    from ..train.config import list_recipes, read_recipe

    rows = []
    for name in list_recipes():
        r = read_recipe(name)
        paper = r.get("paper", {})
        rows.append({"recipe": name, "model": r.get("model", ""), "paper": paper.get("title", ""), "reported": paper.get("reported", "")})
    print_table(rows, ["recipe", "model", "paper", "reported"])
    return 0


def cmd_data_info(args) -> int:
    faces = load_data(args, Bars(not args.no_progress))
    print(json.dumps(faces.describe(), indent=2))
    return 0
