#!/usr/bin/env python3
"""Keeps infra/template.yaml in step with the catalog data files (one source of truth).

The supported teacher/student pairs live in functions/core/data/model-pairs.json, which the Lambdas
compile in. The template repeats them where CloudFormation needs literals: parameter AllowedValues,
the Rules that reject an unsupported default pair or Region, and the IAM resources for the teachers
the Bedrock service role may invoke and the students the launcher may customize. Each of those lives
between "# BEGIN GENERATED: <name>" and "# END GENERATED: <name>" markers, and this script renders them.

  python3 infra/model_params.py --check   # exit 1 and show a diff if the template has drifted
  python3 infra/model_params.py --write   # rewrite the generated blocks in place

Standard library only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
DATA = ROOT / "functions" / "core" / "data"

# The defaults the Lambdas fall back to (docs/contracts.md); the template's defaults must agree.
CONTRACT_DEFAULT_TEACHER = "amazon.nova-pro-v1:0"
CONTRACT_DEFAULT_STUDENT = "amazon.nova-lite-v1:0:300k"

BLOCK_RE = re.compile(
    r"^(?P<indent>[ ]*)# BEGIN GENERATED: (?P<name>[a-z-]+) \(infra/model_params\.py\)\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)# END GENERATED: (?P=name)\n",
    re.MULTILINE | re.DOTALL,
)


class CatalogError(Exception):
    pass


def load_json(name: str) -> dict:
    path = DATA / name
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CatalogError(f"{path}: {e}") from e


def check_catalog(pairs: dict) -> None:
    students = pairs.get("students")
    if not isinstance(students, dict) or not students:
        raise CatalogError("model-pairs.json: field `students` must be a non-empty object")
    if not isinstance(pairs.get("pairs"), list) or not pairs["pairs"]:
        raise CatalogError("model-pairs.json: field `pairs` must be a non-empty list")
    for i, pair in enumerate(pairs["pairs"]):
        where = f"model-pairs.json: pairs[{i}]"
        for field in ("teacher", "region", "students", "inferenceProfileOnly"):
            if field not in pair:
                raise CatalogError(f"{where}: missing field `{field}`")
        for s in pair["students"]:
            if s not in students:
                raise CatalogError(f"{where}: student {s} is not listed in `students`")
    defaults = [p for p in pairs["pairs"] if p["teacher"] == CONTRACT_DEFAULT_TEACHER]
    if not defaults or CONTRACT_DEFAULT_STUDENT not in defaults[0]["students"]:
        raise CatalogError(
            f"model-pairs.json: the contract's default pair {CONTRACT_DEFAULT_TEACHER} -> "
            f"{CONTRACT_DEFAULT_STUDENT} (docs/contracts.md) is not a supported pair"
        )


def rule_name(teacher: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", teacher)
    return "Pair" + "".join(w[:1].upper() + w[1:] for w in words if w)


def base_model(model_id: str) -> str:
    """Inference profile ids carry a geography prefix (us., eu., apac.) before the model id."""
    m = re.match(r"^(us|eu|apac|us-gov|global)\.(.+)$", model_id)
    return m.group(2) if m else model_id


def render(pairs: dict, limits: dict) -> dict[str, list[str]]:
    teachers = sorted({p["teacher"] for p in pairs["pairs"]})
    students = sorted(pairs["students"])
    job = limits["job"]
    throughput = limits["throughput"]
    blocks: dict[str, list[str]] = {}

    blocks["parameters"] = [
        "TeacherModel:",
        "  Type: String",
        "  Description: Default teacher model or inference profile (from functions/core/data/model-pairs.json).",
        f"  Default: {CONTRACT_DEFAULT_TEACHER}",
        "  AllowedValues:",
        *[f"    - {t}" for t in teachers],
        "StudentModel:",
        "  Type: String",
        "  Description: Default student model; must be a supported student of TeacherModel (checked by Rules).",
        f"  Default: {CONTRACT_DEFAULT_STUDENT}",
        "  AllowedValues:",
        *[f"    - {s}" for s in students],
        "MaxResponseLength:",
        "  Type: Number",
        "  Description: Default maximum response length the teacher generates per prompt (maxResponseLengthForInference).",
        f"  Default: {job['defaultMaxResponseLengthForInference']}",
        f"  MinValue: {job['minMaxResponseLengthForInference']}",
        f"  MaxValue: {job['maxMaxResponseLengthForInference']}",
        "MaxModelUnits:",
        "  Type: Number",
        "  Description: Guardrail - the most Provisioned Throughput model units any run may buy (0 = none; AllowProvisioning must be true for any).",
        f"  Default: {throughput['defaultMaxModelUnits']}",
        # 0 switches throughput off (issue 16): with AllowProvisioning=false nothing is bought anyway.
        "  MinValue: 0",
    ]

    rules: list[str] = []
    for p in pairs["pairs"]:
        listed = ", ".join(p["students"])
        rules += [
            f"{rule_name(p['teacher'])}:",
            f"  RuleCondition: !Equals [!Ref TeacherModel, {p['teacher']}]",
            "  Assertions:",
            f"    - Assert: !Contains [[{listed}], !Ref StudentModel]",
            f"      AssertDescription: \"Teacher {p['teacher']} supports these students: {listed}\"",
            f"    - Assert: !Equals [!Ref \"AWS::Region\", {p['region']}]",
            f"      AssertDescription: \"The pair's models are available for distillation in {p['region']}; "
            "deploy the stack there or pick another pair\"",
        ]
    blocks["rules"] = rules

    teacher_arns: list[str] = []
    for p in pairs["pairs"]:
        t = p["teacher"]
        if p["inferenceProfileOnly"]:
            teacher_arns.append(
                f'- !Sub "arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}:${{AWS::AccountId}}:inference-profile/{t}"'
            )
            # A cross-Region profile sends requests to the model in any Region of its geography.
            teacher_arns.append(
                f'- !Sub "arn:${{AWS::Partition}}:bedrock:*::foundation-model/{base_model(t)}"'
            )
        else:
            teacher_arns.append(
                f'- !Sub "arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}::foundation-model/{t}"'
            )
    blocks["teacher-resources"] = teacher_arns
    blocks["launcher-teacher-resources"] = teacher_arns
    # The model-evaluator asks the teacher, and judges with it (or another teacher).
    blocks["evaluator-teacher-resources"] = teacher_arns

    blocks["student-resources"] = [
        f'- !Sub "arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}::foundation-model/{s}"' for s in students
    ]
    # CreateProvisionedModelThroughput on a custom model is also authorized against the foundation
    # model it was customized from (the students), besides the custom model and the new throughput.
    blocks["provisioner-student-resources"] = blocks["student-resources"]
    return blocks


def apply(template: str, blocks: dict[str, list[str]]) -> str:
    seen: set[str] = set()

    def replace(m: re.Match) -> str:
        name, indent = m.group("name"), m.group("indent")
        if name not in blocks:
            raise CatalogError(f"{TEMPLATE}: unknown generated block `{name}`")
        seen.add(name)
        body = "".join(f"{indent}{line}\n" for line in blocks[name])
        return (
            f"{indent}# BEGIN GENERATED: {name} (infra/model_params.py)\n{body}"
            f"{indent}# END GENERATED: {name}\n"
        )

    out = BLOCK_RE.sub(replace, template)
    missing = sorted(set(blocks) - seen)
    if missing:
        raise CatalogError(f"{TEMPLATE}: generated block(s) missing their markers: {', '.join(missing)}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail if the template differs from the catalog")
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    args = ap.parse_args()
    try:
        pairs, limits = load_json("model-pairs.json"), load_json("limits.json")
        check_catalog(pairs)
        current = TEMPLATE.read_text()
        wanted = apply(current, render(pairs, limits))
    except CatalogError as e:
        print(f"model_params: {e}", file=sys.stderr)
        return 2
    if args.write:
        if wanted != current:
            TEMPLATE.write_text(wanted)
            print(f"model_params: updated {TEMPLATE.relative_to(ROOT)}")
        else:
            print("model_params: template already matches the catalog")
        return 0
    if wanted != current:
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                "infra/template.yaml (current)",
                "infra/template.yaml (from functions/core/data)",
            )
        )
        print(
            "model_params: infra/template.yaml has drifted from functions/core/data/model-pairs.json or "
            "limits.json; run `python3 infra/model_params.py --write`",
            file=sys.stderr,
        )
        return 1
    print("model_params: template matches functions/core/data (model pairs, limits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
