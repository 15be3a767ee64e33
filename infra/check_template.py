#!/usr/bin/env python3
"""Checks on infra/template.yaml that the generic linters cannot make (run by scripts/check-infra.sh).

1. IAM wildcards, on the template after the SAM transform (so the roles SAM generates are included):
   no Allow statement may grant `*`, `bedrock:*` or `s3:*` (or any `service:*`), and `Resource: "*"` in
   an Allow is only accepted for the actions listed in RESOURCE_STAR_OK, whose APIs support no
   resource-level permission. Resource and key policies (KMS key, secret) are not identity policies:
   there "*" means "this resource", so they are skipped.
2. The ledger table: its key schema, indexes and TTL attribute must match `create_table` in
   functions/aws/src/dynamodb.rs, which builds the same table for tests and the local stack.
3. Tag-scoped deletes: every Allow of a delete in TAG_SCOPED_DELETES in the reconciler's role carries
   `StringEquals aws:ResourceTag/distillery:managed-by = distillery`, so it can only delete what
   Distillery created (the code checks the same tag first).
4. Snapshot immutability (the bytes Bedrock trains on are the bytes validated): the bucket policy
   denies writing, deleting and replicating under the runs/ prefix to every principal but the
   validator's role, and Bedrock's service role can read nothing under the upload prefix.

With --transformed PATH it also writes the transformed template (JSON) for checkov.
Needs cfn-lint (for the SAM transform), so run it with the repo's .venv-infra python.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
LEDGER_ADAPTER = ROOT / "functions" / "aws" / "src" / "dynamodb.rs"

# Actions whose APIs accept no resource ARN, so an Allow on them can only say "Resource: *".
RESOURCE_STAR_OK = {
    # Step Functions log delivery to CloudWatch Logs.
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # Bedrock List calls the reconciler makes (no resource types in the service authorization reference).
    "bedrock:ListModelCustomizationJobs",
    "bedrock:ListProvisionedModelThroughputs",
    # The status poller resuming a waiting execution. The SendTask* actions take no resource ARN (the
    # IAM policy editor: "Selected actions only support the all resources wildcard"); the task token
    # is the capability.
    "states:SendTaskSuccess",
    # X-Ray segments and sampling.
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
}


def transformed_template(region: str) -> dict:
    from cfnlint.decode import decode
    from cfnlint.template.transforms._sam import Transform

    template, matches = decode(str(TEMPLATE))
    if matches:
        raise SystemExit(f"check_template: cannot parse {TEMPLATE}: {matches}")
    transform = Transform(str(TEMPLATE), template, region)
    errors = transform.transform_template()
    if errors:
        raise SystemExit(f"check_template: SAM transform failed: {errors}")
    return json.loads(json.dumps(transform.template(), default=str))


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def statements_of(doc) -> list[dict]:
    """Statements of a policy document, looking through Fn::If branches."""
    out: list[dict] = []

    def visit(s):
        if isinstance(s, dict) and "Fn::If" in s:
            for branch in s["Fn::If"][1:]:
                visit(branch)
        elif isinstance(s, dict) and "Effect" in s:
            out.append(s)

    if isinstance(doc, dict):
        for s in as_list(doc.get("Statement", [])):
            visit(s)
    return out


# Deletes of serving resources: in every role, only on resources Distillery tagged (the reconciler's
# expiry pass and orphan clean-up are the only automated callers).
TAG_SCOPED_DELETES = {
    "bedrock:DeleteProvisionedModelThroughput",
    "bedrock:DeleteCustomModelDeployment",
}
MANAGED_BY_CONDITION = ("aws:ResourceTag/distillery:managed-by", "distillery")


def tag_scope_problems(resources: dict) -> list[str]:
    problems: list[str] = []
    for rid, pname, doc in identity_policies(resources):
        for st in statements_of(doc):
            if st.get("Effect") != "Allow":
                continue
            deletes = TAG_SCOPED_DELETES & set(as_list(st.get("Action", [])))
            if not deletes:
                continue
            key, value = MANAGED_BY_CONDITION
            cond = (st.get("Condition") or {}).get("StringEquals") or {}
            if as_list(cond.get(key)) != [value]:
                problems.append(
                    f"{rid} policy {pname} statement {st.get('Sid', '(no Sid)')}: "
                    f"{', '.join(sorted(deletes))} without StringEquals {key} = {value}"
                )
    return problems


def identity_policies(resources: dict):
    """(resource id, policy name, document) for every identity policy in the template."""
    for rid, res in resources.items():
        props = res.get("Properties", {}) or {}
        t = res.get("Type")
        if t == "AWS::IAM::Role":
            for p in props.get("Policies", []) or []:
                yield rid, p.get("PolicyName", "?"), p.get("PolicyDocument")
        elif t in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield rid, props.get("PolicyName", rid), props.get("PolicyDocument")


def iam_problems(resources: dict) -> list[str]:
    problems: list[str] = []
    for rid, pname, doc in identity_policies(resources):
        for st in statements_of(doc):
            if st.get("Effect") != "Allow":
                continue
            where = f"{rid} policy {pname} statement {st.get('Sid', '(no Sid)')}"
            if "NotAction" in st or "NotResource" in st:
                problems.append(f"{where}: NotAction/NotResource in an Allow grants too much")
            actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
            for a in actions:
                if a == "*" or a.endswith(":*"):
                    problems.append(f"{where}: wildcard action {a!r}")
            if "*" in as_list(st.get("Resource", [])):
                broad = sorted(set(actions) - RESOURCE_STAR_OK)
                if broad:
                    problems.append(
                        f"{where}: Resource \"*\" for {', '.join(broad)} (these APIs accept a resource ARN)"
                    )
    return problems


# What nobody but the validator may do under runs/ (s3:PutObject also covers copies and multipart).
SNAPSHOT_DENIED_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"}
SNAPSHOT_WRITER_ROLE = "DatasetValidatorFunctionRole"
# The model-evaluator may also write under runs/ (its results, runs/<id>/evaluation*), but never the
# training snapshot or the held-out slice: a second Deny keeps those to the validator alone.
RESULTS_WRITER_ROLE = "ModelEvaluatorFunctionRole"
PROTECTED_RUN_FILES = ("dataset.jsonl", "heldout.jsonl")
BEDROCK_SERVICE_ROLE = "BedrockDistillationRole"


def resolve_text(v, mappings: dict):
    """A value with its Fn::Sub / Fn::FindInMap / Fn::GetAtt / Ref resolved as far as the template
    alone allows: mapping lookups become their value, a resource attribute becomes `${Id.Attr}`."""
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return [resolve_text(x, mappings) for x in v]
    if not isinstance(v, dict):
        return v
    if "Fn::FindInMap" in v:
        m, k1, k2 = (resolve_text(x, mappings) for x in v["Fn::FindInMap"])
        return mappings.get(m, {}).get(k1, {}).get(k2, "")
    if "Fn::GetAtt" in v:
        ga = v["Fn::GetAtt"]
        return "${" + (".".join(ga) if isinstance(ga, list) else ga) + "}"
    if "Ref" in v:
        return "${" + v["Ref"] + "}"
    if "Fn::Sub" in v:
        sub = v["Fn::Sub"]
        text, names = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
        for name, value in names.items():
            text = text.replace("${" + name + "}", str(resolve_text(value, mappings)))
        return text
    return {k: resolve_text(x, mappings) for k, x in v.items()}


def snapshot_problems(resources: dict, mappings: dict) -> list[str]:
    prefixes = mappings.get("Layout", {}).get("Prefixes", {})
    runs, upload = prefixes.get("Runs"), prefixes.get("Upload")
    if not runs or not upload:
        return ["Mappings Layout.Prefixes has no Runs or Upload prefix"]
    problems: list[str] = []
    runs_arn = "${DatasetBucket.Arn}/" + runs + "*"
    writer_arn = "${" + SNAPSHOT_WRITER_ROLE + ".Arn}"
    results_arn = "${" + RESULTS_WRITER_ROLE + ".Arn}"
    file_arns = {f: "${DatasetBucket.Arn}/" + runs + "*/" + f for f in PROTECTED_RUN_FILES}
    guarded = False
    # Which protected files a validator-only Deny covers (a validator-only Deny on the whole of
    # runs/ covers them all).
    files_guarded: set[str] = set()
    for rid, res in resources.items():
        if res.get("Type") != "AWS::S3::BucketPolicy":
            continue
        doc = resolve_text(res.get("Properties", {}).get("PolicyDocument"), mappings)
        for st in statements_of(doc):
            if st.get("Effect") != "Deny" or st.get("Principal") not in ("*", {"AWS": "*"}):
                continue
            targets = as_list(st.get("Resource", []))
            covered = [f for f, arn in file_arns.items() if arn in targets]
            if runs_arn not in targets and not covered:
                continue
            missing = SNAPSHOT_DENIED_ACTIONS - set(as_list(st.get("Action", [])))
            exempt = st.get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn")
            exempt_set = set(as_list(exempt)) if exempt else set()
            only_condition = set(st.get("Condition", {})) == {"ArnNotEquals"}
            if missing:
                problems.append(f"{rid} statement {st.get('Sid')}: does not deny {', '.join(sorted(missing))} on {runs}")
            elif runs_arn in targets:
                if not only_condition or exempt_set not in ({writer_arn}, {writer_arn, results_arn}):
                    problems.append(f"{rid} statement {st.get('Sid')}: the only exceptions may be "
                                    f"aws:PrincipalArn = {writer_arn} (and {results_arn}) "
                                    f"(found {st.get('Condition')!r})")
                else:
                    guarded = True
                    if exempt_set == {writer_arn}:
                        files_guarded.update(PROTECTED_RUN_FILES)
            elif not only_condition or exempt_set != {writer_arn}:
                problems.append(f"{rid} statement {st.get('Sid')}: on {', '.join(covered)} the only "
                                f"exception must be aws:PrincipalArn = {writer_arn} (found {st.get('Condition')!r})")
            else:
                files_guarded.update(covered)
    if not guarded:
        problems.append(f"no bucket policy denies {', '.join(sorted(SNAPSHOT_DENIED_ACTIONS))} on "
                        f"{runs_arn} to every principal but {SNAPSHOT_WRITER_ROLE}")
    for f in sorted(set(PROTECTED_RUN_FILES) - files_guarded):
        problems.append(f"no bucket policy denies writing {runs}<run-id>/{f} to every principal but "
                        f"{SNAPSHOT_WRITER_ROLE}")
    role = resources.get(BEDROCK_SERVICE_ROLE, {}).get("Properties", {})
    for p in role.get("Policies", []) or []:
        for st in statements_of(resolve_text(p.get("PolicyDocument"), mappings)):
            if st.get("Effect") == "Allow" and upload in json.dumps(st):
                problems.append(f"{BEDROCK_SERVICE_ROLE} policy {p.get('PolicyName')} statement "
                                f"{st.get('Sid')}: grants access under the upload prefix {upload} "
                                "(jobs train on the runs/ snapshot only)")
    return problems


def rust_consts(src: str) -> dict[str, str]:
    return dict(re.findall(r'const\s+([A-Z_]+)\s*:\s*&str\s*=\s*"([^"]*)"', src))


def ledger_schema_from_rust() -> dict | None:
    if not LEDGER_ADAPTER.exists():
        return None
    src = LEDGER_ADAPTER.read_text()
    m = re.search(r"pub async fn create_table\b.*?\n}\n", src, re.DOTALL)
    if not m:
        return None
    body = m.group(0)
    consts = rust_consts(src)

    def resolve(token: str) -> str:
        token = token.strip()
        if token.startswith('"'):
            return token.strip('"')
        if token not in consts:
            raise SystemExit(f"check_template: {LEDGER_ADAPTER}: cannot resolve constant {token}")
        return consts[token]

    gsis = {}
    for name, pk, sk in re.findall(r"gsi\(\s*([A-Z_]+|\"[^\"]+\")\s*,\s*(\"[^\"]+\")\s*,\s*(\"[^\"]+\")\s*\)", body):
        gsis[resolve(name)] = (resolve(pk), resolve(sk))
    table_keys = re.findall(r"\.key_schema\(key\(\s*(\"[^\"]+\")\s*,\s*KeyType::(Hash|Range)\s*\)", body)
    ttl = re.search(r"\.attribute_name\(\s*([A-Z_]+|\"[^\"]+\")\s*\)", body)
    return {
        "attributes": {resolve(a) for a in re.findall(r"string_attr\(\s*(\"[^\"]+\")\s*\)", body)},
        "key": [(resolve(k), t.upper()) for k, t in table_keys],
        "gsis": gsis,
        "ttl": resolve(ttl.group(1)) if ttl else None,
        "pay_per_request": "BillingMode::PayPerRequest" in body,
    }


def ledger_schema_from_template(resources: dict) -> dict:
    props = resources["RunTable"]["Properties"]
    gsis = {}
    for g in props.get("GlobalSecondaryIndexes", []):
        ks = {k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]}
        gsis[g["IndexName"]] = (ks.get("HASH"), ks.get("RANGE"))
    return {
        "attributes": {a["AttributeName"] for a in props["AttributeDefinitions"] if a["AttributeType"] == "S"},
        "key": [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]],
        "gsis": gsis,
        "ttl": props.get("TimeToLiveSpecification", {}).get("AttributeName"),
        "pay_per_request": props.get("BillingMode") == "PAY_PER_REQUEST",
    }


JOB_EVENT_PATTERN = ROOT / "events" / "bedrock-job-event-pattern.json"


def job_event_problems(resources: dict) -> list[str]:
    """The template's job-event rule must route exactly what the local stack's rule routes
    (events/bedrock-job-event-pattern.json, which stack-setup loads), to the status poller."""
    rule = resources.get("JobEventRule")
    if rule is None:
        return ["no JobEventRule resource"]
    problems = []
    want = json.loads(JOB_EVENT_PATTERN.read_text())
    got = rule["Properties"].get("EventPattern")
    if got != want:
        problems.append(f"JobEventRule EventPattern {got!r} differs from "
                        f"{JOB_EVENT_PATTERN.relative_to(ROOT)} {want!r}")
    targets = rule["Properties"].get("Targets", [])
    arns = [json.dumps(t.get("Arn")) for t in targets]
    if not any("StatusPollerFunction" in a for a in arns):
        problems.append(f"JobEventRule does not target StatusPollerFunction (targets {arns})")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description="Distillery template checks beyond cfn-lint and checkov")
    ap.add_argument("--transformed", type=Path, help="write the SAM-transformed template (JSON) here")
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args()

    template = transformed_template(args.region)
    resources = template["Resources"]
    if args.transformed:
        args.transformed.write_text(json.dumps(template, indent=1))

    failed = False
    problems = iam_problems(resources)
    problems += tag_scope_problems(resources)
    for p in problems:
        print(f"check_template: IAM: {p}", file=sys.stderr)
    failed |= bool(problems)
    roles = sum(1 for r in resources.values() if r.get("Type") == "AWS::IAM::Role")
    if not problems:
        print(f"check_template: IAM ok ({roles} roles after the SAM transform; no wildcard actions, "
              "Resource \"*\" only for log delivery / X-Ray / Bedrock List calls / SendTaskSuccess)")

    problems = snapshot_problems(resources, template.get("Mappings", {}))
    for p in problems:
        print(f"check_template: snapshots: {p}", file=sys.stderr)
    failed |= bool(problems)
    if not problems:
        print("check_template: snapshots ok (only the validator writes runs/ but the evaluator its results there, only the validator the snapshot and held-out slice, nobody deletes; "
              "Bedrock's role reads no upload)")

    problems = job_event_problems(resources)
    for p in problems:
        print(f"check_template: job events: {p}", file=sys.stderr)
    failed |= bool(problems)
    if not problems:
        print("check_template: job-event rule matches events/bedrock-job-event-pattern.json and "
              "targets the status poller")

    rust = ledger_schema_from_rust()
    if rust is None:
        print(f"check_template: ledger: no create_table in {LEDGER_ADAPTER.relative_to(ROOT)}; "
              "table schema NOT compared", file=sys.stderr)
        failed = True
    else:
        tpl = ledger_schema_from_template(resources)
        diffs = [k for k in rust if rust[k] != tpl[k]]
        for k in diffs:
            print(f"check_template: ledger: RunTable {k} is {tpl[k]!r} in the template but "
                  f"{rust[k]!r} in {LEDGER_ADAPTER.relative_to(ROOT)} create_table", file=sys.stderr)
        failed |= bool(diffs)
        if not diffs:
            print(f"check_template: ledger table matches create_table (key {rust['key']}, "
                  f"indexes {sorted(rust['gsis'])}, TTL {rust['ttl']})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
