#!/usr/bin/python3
"""Transcribes the zero-shot class names and prompt templates of the CLIP benchmark tasks into clip_tasks.json.

Source: FusionBench (github.com/tanganke/fusion_bench), fusion_bench/tasks/clip_classification/<task>.py,
which carries task-vectors' (github.com/mlfoundations/task_vectors, src/datasets/templates.py and the dataset
classes) lists for the 8 tasks and adds the 14/20-task ones. Each module is read with `ast` (never executed):
the `classnames` list (CIFAR-100: `fine_label`; EMNIST letters, Fashion-MNIST, KMNIST: built from their
literal label → name dicts in label order) and the `templates` list of `lambda c: f"...{c}..."`, each
f-string turned into a template with "{}" where the class name goes. The class counts are checked against
the datasets' published label counts.

Usage: python3 extract_clip_tasks.py FUSION_BENCH_CHECKOUT COMMIT > clip_tasks.json
"""

import ast
import json
import os
import sys

# task name -> (module, class-names variable, expected classes)
TASKS = {
    "sun397": ("sun397", "classnames", 397),
    "stanford_cars": ("stanford_cars", "classnames", 196),
    "resisc45": ("resisc45", "classnames", 45),
    "eurosat": ("eurosat", "classnames", 10),
    "svhn": ("svhn", "classnames", 10),
    "gtsrb": ("gtsrb", "classnames", 43),
    "mnist": ("mnist", "classnames", 10),
    "dtd": ("dtd", "classnames", 47),
    "oxford_flowers102": ("flower102", "classnames", 102),
    "pcam": ("pcam", "classnames", 2),
    "fer2013": ("fer2013", "classnames", 7),
    "oxford_iiit_pet": ("oxford_iiit_pet", "classnames", 37),
    "stl10": ("stl10", "classnames", 10),
    "cifar100": ("cifar100", "fine_label", 100),
    "cifar10": ("cifar10", "classnames", 10),
    "food101": ("food101", "classnames", 101),
    "fashion_mnist": ("fashion_mnist", "classnames", 10),
    "emnist_letters": ("emnist_letters", "classnames", 26),
    "kmnist": ("kmnist", "classnames", 10),
    "rendered_sst2": ("rendered_sst2", "classnames", 2),
}


def template_of(node):
    if not (isinstance(node, ast.Lambda) and isinstance(node.body, ast.JoinedStr)):
        raise ValueError(f"template is not lambda c: f'...': {ast.dump(node)}")
    arg = node.args.args[0].arg
    parts = []
    for v in node.body.values:
        if isinstance(v, ast.Constant):
            parts.append(v.value.replace("{", "{{").replace("}", "}}"))
        elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id == arg and v.format_spec is None:
            parts.append("{}")
        else:
            raise ValueError(f"unsupported f-string part {ast.dump(v)}")
    return "".join(parts)


def class_list(node, values):
    """A literal list, or `[mapping[str(i)] for i in range(n)]` over a literal dict `mapping`."""
    if isinstance(node, ast.ListComp):
        gen = node.generators[0]
        mapping = ast.literal_eval(values[node.elt.value.id])
        n = ast.literal_eval(gen.iter.args[0])
        return [mapping[str(i)] for i in range(n)]
    return ast.literal_eval(node)


def main(root, commit):
    out = {"source": f"https://github.com/tanganke/fusion_bench/tree/{commit}/fusion_bench/tasks/clip_classification", "tasks": {}}
    for task, (module, var, count) in TASKS.items():
        path = os.path.join(root, "fusion_bench", "tasks", "clip_classification", module + ".py")
        tree = ast.parse(open(path, encoding="utf-8").read())
        values = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                values[stmt.targets[0].id] = stmt.value
        classes = class_list(values[var], values)
        if isinstance(classes, dict):
            classes = [classes[k] for k in sorted(classes)]
        templates = [template_of(t) for t in values["templates"].elts]
        if len(classes) != count:
            raise SystemExit(f"{task}: {len(classes)} classes, expected {count}")
        out["tasks"][task] = {"module": module + ".py", "classes": classes, "templates": templates}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
