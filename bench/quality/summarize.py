#!/usr/bin/env python3
"""Summary of bench/quality/run: per run and averaged over runs, held-out macro PR-AUC of CRAFT
and the two XGBoost baselines, per class, the cross-modal (conjunction) share, ECE, the subset
table and the interaction-score signs. Input: the runs' `craft eval --json` files."""
import json
import math
import sys


def mean(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else float("nan")


def f3(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


runs = []
for path in sys.argv[1:]:
    with open(path) as fh:
        e = json.load(fh)
    rows = {r["name"]: r for r in e["baselines"]["rows"]}
    xgb_tab = next(r for n, r in rows.items() if n.startswith("XGBoost on"))
    xgb_all = rows["XGBoost (early fusion)"]
    classes = e["model"]["classes"]
    craft_cls = [c["pr_auc"] for c in e["metrics"]["classes"]]
    subsets = {s["name"]: s["pr_auc"] for s in e["subsets"]}
    summ = {(s["kind"], s["population"]): s for s in (e["cmis_check"] or {}).get("summary", [])}
    runs.append(dict(path=path, classes=classes, craft=e["metrics"]["macro"]["pr_auc"], craft_cls=craft_cls,
                     xgb_tab=xgb_tab["pr_auc"], xgb_tab_cls=xgb_tab.get("class_pr_auc", []),
                     xgb_all=xgb_all["pr_auc"], xgb_all_cls=xgb_all.get("class_pr_auc", []),
                     ece=e["metrics"]["ece"], subsets=subsets, summ=summ))

print("| run | CRAFT | XGBoost tab | XGBoost tab+txt+graph | CRAFT / best XGBoost | ECE |")
print("| --- | --- | --- | --- | --- | --- |")
for r in runs:
    best = max(r["xgb_tab"], r["xgb_all"])
    print(f"| {r['path'].split('/')[-1].replace('.eval.json', '')} | {f3(r['craft'])} | {f3(r['xgb_tab'])} | "
          f"{f3(r['xgb_all'])} | {f3(r['craft'] / best if best else float('nan'))} | {f3(r['ece'])} |")
print(f"| **mean** | **{f3(mean([r['craft'] for r in runs]))}** | {f3(mean([r['xgb_tab'] for r in runs]))} | "
      f"{f3(mean([r['xgb_all'] for r in runs]))} | "
      f"{f3(mean([r['craft'] / max(r['xgb_tab'], r['xgb_all']) for r in runs]))} | {f3(mean([r['ece'] for r in runs]))} |")
print()
classes = runs[0]["classes"]
print("Per class (mean over runs), held-out PR-AUC:")
print("| class | CRAFT | XGBoost tab | XGBoost tab+txt+graph |")
print("| --- | --- | --- | --- |")
for k, c in enumerate(classes):
    print(f"| {c} | {f3(mean([r['craft_cls'][k] for r in runs]))} | "
          f"{f3(mean([r['xgb_tab_cls'][k] if k < len(r['xgb_tab_cls']) else None for r in runs]))} | "
          f"{f3(mean([r['xgb_all_cls'][k] if k < len(r['xgb_all_cls']) else None for r in runs]))} |")
print()
names = list(runs[0]["subsets"].keys())
print("Modality subsets (mean macro PR-AUC over runs): " +
      ", ".join(f"{n} {f3(mean([r['subsets'].get(n) for r in runs]))}" for n in names))
print()
print("Interaction score sign (share of orders with the planted sign; chance = the same share for other features):")
for kind in ("synergistic", "suppressed"):
    for pop in ("positives", "rule holds", "positive+rule"):
        vals = [r["summ"].get((kind, pop)) for r in runs]
        vals = [v for v in vals if v]
        if vals:
            print(f"  {kind:11s} on {pop:31s} planted {f3(mean([v.get('mean_interaction_sign_right') for v in vals]))}"
                  f"  chance {f3(mean([v.get('mean_interaction_sign_chance') for v in vals]))}"
                  f"  (CMIS AUC {f3(mean([v.get('mean_auc') for v in vals]))})")
