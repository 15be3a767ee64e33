#!/usr/bin/env python3
"""Checks on infra/template.yaml that the generic linters cannot make (run by scripts/check-infra.sh).

1. IAM wildcards, on the template after the SAM transform (so the roles SAM generates are included):
   no Allow statement may grant `*`, `bedrock:*` or `s3:*` (or any `service:*`), and `Resource: "*"` in
   an Allow is only accepted for the actions listed in RESOURCE_STAR_OK, whose APIs support no
   resource-level permission. Resource and key policies (KMS key, secret) are not identity policies:
   there "*" means "this resource", so they are skipped.
2. The ledger table: its key schema, indexes and TTL attribute must match `create_table` in
   functions/aws/src/dynamodb.rs, which builds the same table for tests and the local stack.
3. Tagging only with Distillery's keys: every Allow of bedrock:TagResource carries
   `ForAllValues:StringLike aws:TagKeys = distillery:*`. Tag-scoped deletes: every Allow of a delete in TAG_SCOPED_DELETES in the reconciler's role carries
   `StringEquals aws:ResourceTag/distillery:managed-by = distillery`, so it can only delete what
   Distillery created (the code checks the same tag first).
4. Snapshot immutability (the bytes Bedrock trains on are the bytes validated): the bucket policy
   denies writing, deleting and replicating under the runs/ prefix to every principal but the
   validator's role, and Bedrock's service role can read nothing under the upload prefix.

5. Actions vs grants, per function: the SDK operations its code can reach (from its binary's
   main.rs through the use cases in functions/core to the adapters in functions/aws, by name; see
   code_actions) mapped to IAM actions, against the actions its role's inline policies allow. Either
   side's extras fail, except the grants in INDIRECT_GRANTS (needed without an SDK call naming them)
   and the reachable-but-never-called actions in NOT_CALLED (each with the reason it is not called).

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


# Tagging (tag-on-create included) only with Distillery's own keys: no role can retag a resource
# with someone else's keys, e.g. to move it into or out of another tag-scoped policy.
TAG_KEYS_CONDITION = ("ForAllValues:StringLike", "aws:TagKeys", "distillery:*")


def tag_keys_problems(resources: dict) -> list[str]:
    problems: list[str] = []
    op, key, value = TAG_KEYS_CONDITION
    for rid, pname, doc in identity_policies(resources):
        for st in statements_of(doc):
            if st.get("Effect") != "Allow" or "bedrock:TagResource" not in as_list(st.get("Action", [])):
                continue
            if as_list(((st.get("Condition") or {}).get(op) or {}).get(key)) != [value]:
                problems.append(f"{rid} policy {pname} statement {st.get('Sid', '(no Sid)')}: "
                                f"bedrock:TagResource without {op} {key} = {value}")
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

# --- 5. Actions the code calls vs actions each function's policy grants ---------------------------

# Where the code lives, per service module of functions/aws (slack.rs is an HTTP client, lambda.rs
# and sdk_error.rs call nothing): the IAM prefix its SDK client's operations map to.
ADAPTER_SERVICES = {
    "bedrock.rs": "bedrock",
    "bedrock_runtime.rs": "bedrock",
    "dynamodb.rs": "dynamodb",
    "s3.rs": "s3",
    "secrets.rs": "secretsmanager",
    "sfn.rs": "states",
    "sns.rs": "sns",
}
# SDK operations whose IAM action is not the operation's name in PascalCase (Service Authorization
# Reference): HEAD and the multipart calls are authorized as GetObject / PutObject, Converse as
# InvokeModel, a ListObjectsV2 as ListBucket.
OPERATION_ACTIONS = {
    "s3:head_object": ["s3:GetObject"],
    "s3:create_multipart_upload": ["s3:PutObject"],
    "s3:upload_part": ["s3:PutObject"],
    "s3:complete_multipart_upload": ["s3:PutObject"],
    "s3:list_objects_v2": ["s3:ListBucket"],
    "bedrock:converse": ["bedrock:InvokeModel"],
    "bedrock:converse_stream": ["bedrock:InvokeModelWithResponseStream"],
}
# An object read pinned to a version id (`.set_version_id(...)`) is authorized as GetObjectVersion;
# the store's `head`/`open` pin only when a caller passes a pin (its last argument is not `None`).
VERSIONED_READS = {"s3:head_object", "s3:get_object"}
PINNED_READ_CALL = re.compile(r"\.(?:head|open)\s*\(((?:[^()]|\([^()]*\))*)\)")

# The entry points of each function: its binary's main.rs, and for the status-poller binary, which
# serves two functions by input shape, the methods its mode calls (status-poller/src/main.rs
# `Service::handle`): the poll loop and the event tracker for one, the reconciler pass for the other.
FUNCTION_ENTRIES = {
    "DatasetValidatorFunction": ("dataset-validator", None),
    "JobLauncherFunction": ("job-launcher", None),
    "StatusPollerFunction": ("status-poller", ({"StatusPoller", "JobTracker"}, {"await_job", "on_event", "poll"})),
    "ReconcilerFunction": ("status-poller", ({"Reconciler"}, {"reconcile"})),
    "ThroughputProvisionerFunction": ("throughput-provisioner", None),
    "NotifierFunction": ("notifier", None),
    "ModelEvaluatorFunction": ("model-evaluator", None),
}

# Grants no SDK call in the code names, each needed indirectly (allowed, never required):
INDIRECT_GRANTS = {
    # Every function: the ledger table and every object write/read is encrypted with the stack's key;
    # DynamoDB, S3, SNS and Secrets Manager call KMS on the caller's behalf (kms:ViaService).
    "*": {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
    # CreateModelCustomizationJob hands Bedrock the service role (iam:PassRole, one role, PassedToService)
    # and tags the job and the custom model it creates (tag-on-create is authorized as TagResource).
    # HeadObject on a missing snapshot answers 404 (reported as "missing") only with s3:ListBucket;
    # without it S3 answers 403 and the run would fail as access denied.
    # With EncryptCustomModels, a job names customModelKmsKeyId: Bedrock creates a grant on the key
    # for itself on the caller's behalf (kms:CreateGrant through kms:ViaService = Bedrock).
    "JobLauncherFunction": {"iam:PassRole", "bedrock:TagResource", "s3:ListBucket", "kms:CreateGrant"},
    # The same 404-not-403 for an upload deleted before validation; and the invocation-log window
    # reads of curated scheduled runs (ListObjectsV2 on the log prefix, app/validate_dataset/curate.rs).
    "DatasetValidatorFunction": {"s3:ListBucket"},
    # CreateProvisionedModelThroughput and CreateCustomModelDeployment tag what they create.
    # And, with EncryptCustomModels, serving a model encrypted with the stack's key lets Bedrock
    # create grants on it on the caller's behalf.
    "ThroughputProvisionerFunction": {"bedrock:TagResource", "kms:CreateGrant"},
}
# Actions the name-based reachability reaches but the function never calls, each checked by hand
# (a value decides it, which a name-level walk cannot see). An entry here is a claim about the code:
# re-check it when the named code changes.
NOT_CALLED = {
    "ReconcilerFunction": {
        # reconcile.rs provisioning_runs calls ThroughputProvisioner::record_throughput_state, which
        # passes Purchase::Never to advance / advance_deployment: it records what Bedrock reports and
        # never creates (provision_throughput.rs: the create branch requires a purchase).
        "bedrock:CreateProvisionedModelThroughput",
        "bedrock:CreateCustomModelDeployment",
        # reconcile/expiry.rs retires only runs with serving_expires_at, which is set when throughput
        # goes InService (provision_throughput.rs serving_expiry), so ServingRetirer::retire never
        # reaches its deployment branch from here (`distillery runs retire` does, as the operator).
        "bedrock:DeleteCustomModelDeployment",
    },
    # The name `handle` also resolves into Notifier::handle (notify/mod.rs), which the evaluator's
    # and provisioner's services never call: they only record milestones on the run, and the state
    # machine's Notify states invoke the notifier function.
    "ThroughputProvisionerFunction": {"sns:Publish", "secretsmanager:GetSecretValue"},
    "ModelEvaluatorFunction": {"sns:Publish", "secretsmanager:GetSecretValue"},
}
# Std trait methods every type implements: following them by name only adds noise (methods are
# followed into the types the reached code names, so other shared names need no exclusion).
GENERIC_NAMES = {"fmt", "clone", "eq", "cmp", "partial_cmp", "hash", "drop", "from", "into", "default"}
RUST_KEYWORDS = {"if", "match", "while", "for", "loop", "return", "fn", "let", "Some", "Ok", "Err", "Box",
                 "Arc", "Vec", "async", "await", "move", "in", "as", "impl", "where", "use", "mod", "pub"}


def strip_rust(src: str) -> str:
    """Rust source without comments, string contents and `#[cfg(test)]` modules (tests call what
    no deployed function calls, e.g. create_table)."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif src.startswith('r#"', i):
            j = src.find('"#', i + 3)
            out.append('""')
            i = n if j < 0 else j + 2
        elif src[i] == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif src[i] == "'" and i + 2 < n and (src[i + 2] == "'" or src[i + 1] == "\\"):
            j = src.find("'", i + 2)
            out.append("' '")
            i = j + 1
        else:
            out.append(src[i])
            i += 1
    text = "".join(out)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()] + text[block_end(text, m.end() - 1) :]
    return text


def block_end(text: str, open_brace: int) -> int:
    depth = 0
    for k in range(open_brace, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(text)


def fn_bodies(text: str):
    """(impl type or None, name, body) of every `fn name(...) { ... }` in stripped source; a trait
    declaration without a body is skipped. The impl type is the `T` of an enclosing `impl T` or
    `impl Trait for T`, so a method call is only followed into types the reached code names."""
    impls = []
    for m in re.finditer(r"\bimpl\b(?:\s*<[^{]*?>)?\s+([^{;]+?)\s*(?:where[^{]*)?\{", text):
        # `impl Trait for Type` is followed when the code names either (a port is called through
        # `&dyn Trait`, its adapter built by name in main.rs).
        names = frozenset(n for part in m.group(1).split(" for ")
                          if (n := re.match(r"[&\s]*(?:dyn\s+)?([A-Za-z_][A-Za-z0-9_]*)", part)))
        impls.append((m.end() - 1, block_end(text, m.end() - 1), frozenset(x.group(1) for x in names)))
    for m in re.finditer(r"\bfn\s+([a-z_][a-z0-9_]*)\b", text):
        k = m.end()
        depth = 0
        while k < len(text):
            c = text[k]
            if c in "([<":
                depth += 1
            elif c in ")]>":
                depth -= 1
            elif c == ";" and depth <= 0:
                break
            elif c == "{" and depth <= 0:
                owner = frozenset()
                for start, end, t in impls:
                    if start < m.start() < end:
                        owner = t
                yield owner, m.group(1), text[k : block_end(text, k)]
                break
            k += 1


def type_names(body: str) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Za-z0-9_]*[a-z][A-Za-z0-9_]*)\b", body))


def struct_fields(text: str) -> dict[str, set[str]]:
    """The types each `struct Name { ... }` names in its fields."""
    return {m.group(1): type_names(text[m.end() - 1 : block_end(text, m.end() - 1)])
            for m in re.finditer(r"\bstruct\s+([A-Z][A-Za-z0-9_]*)[^;{(]*\{", text)}


def called_names(body: str) -> set[str]:
    return {n for n in re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?:::<[^>]*>)?\s*\(", body)
            if n not in RUST_KEYWORDS and n not in GENERIC_NAMES}


def sdk_operations(body: str) -> set[str]:
    return set(re.findall(r"\bclient\s*\.\s*([a-z_0-9]+)\s*\(\s*\)", body))


def code_actions() -> tuple[dict[str, set[str]], dict[str, dict[str, set[str]]]]:
    """Per function: the IAM actions of the SDK operations reachable from its entry points, and for
    each action the adapter functions that call it. Reachability is by name: a free function is
    followed wherever it is called, a method only into the types the code reached so far names
    (so the launcher's `handle` is the launcher service's, not every use case's)."""
    defs: dict[str, list[tuple[frozenset, str, str]]] = {}  # name -> [(impl names, file, body)]
    fields: dict[str, set[str]] = {}
    for path in sorted((ROOT / "functions").glob("*/src/**/*.rs")):
        crate = path.relative_to(ROOT / "functions").parts[0]
        # The CLI is no function; test modules in their own files (`tests.rs`, `*_tests.rs`) call
        # what no deployed function calls.
        if crate == "cli" or path.name.endswith("tests.rs") or "tests" in path.relative_to(ROOT / "functions").parts:
            continue
        text = strip_rust(path.read_text())
        for name, names in struct_fields(text).items():
            fields.setdefault(name, set()).update(names)
        if path.name == "main.rs":
            continue
        for owner, name, body in fn_bodies(text):
            defs.setdefault(name, []).append((owner, str(path.relative_to(ROOT)), body))
    derived: dict[str, set[str]] = {}
    where: dict[str, dict[str, set[str]]] = {}
    for fn, (binary, roots) in FUNCTION_ENTRIES.items():
        if roots is None:
            main = strip_rust((ROOT / "functions" / binary / "src" / "main.rs").read_text())
            calls, types = called_names(main), type_names(main)
        else:
            types, calls = set(roots[0]), set(roots[1])
        visited: set[tuple[frozenset, str, str]] = set()
        pinned = False
        actions: set[str] = set()
        callers: dict[str, set[str]] = {}
        changed = True
        while changed:
            changed = False
            for t in list(types):
                if not fields.get(t, set()) <= types:
                    types |= fields[t]
                    changed = True
            for name in list(calls):
                for owner, file, body in defs.get(name, []):
                    if (owner, file, name) in visited or (owner and not owner & types):
                        continue
                    visited.add((owner, file, name))
                    changed = True
                    pinned |= any(not re.search(r",\s*None\s*$", a.strip())
                                  for a in PINNED_READ_CALL.findall(body) if "," in a)
                    calls |= called_names(body)
                    # A trait method reached through `dyn Trait` runs in the adapter type, whose
                    # inherent helpers it calls.
                    types |= type_names(body) | owner
                    service = ADAPTER_SERVICES.get(Path(file).name) if "/aws/" in file else None
                    if not service:
                        continue
                    for op in sdk_operations(body) - {"clone"}:
                        key = f"{service}:{op}"
                        acts = OPERATION_ACTIONS.get(key) or [
                            f"{service}:" + "".join(p.capitalize() for p in op.split("_"))]
                        if key in VERSIONED_READS and "set_version_id" in body:
                            acts = acts + ["s3:GetObjectVersion@pinned"]
                        for a in acts:
                            actions.add(a)
                            callers.setdefault(a, set()).add(f"{Path(file).name}::{name}")
        # GetObjectVersion only when some reached caller passes a pin (decided once all are reached).
        for a in [a for a in actions if a.endswith("@pinned")]:
            actions.discard(a)
            if pinned:
                actions.add(a.removesuffix("@pinned"))
                callers[a.removesuffix("@pinned")] = callers[a]
        derived[fn] = actions
        where[fn] = callers
    return derived, where


def granted_actions(resources: dict) -> dict[str, set[str]]:
    """Per function: every action an Allow in its role's inline policies, or in an AWS::IAM::Policy
    attached to its role, names (both branches of an Fn::If, and conditional policies: what the
    template may grant under some parameters)."""
    out: dict[str, set[str]] = {}
    for fn in FUNCTION_ENTRIES:
        role_id = f"{fn}Role"
        role = resources.get(role_id, {}).get("Properties", {})
        docs = [p.get("PolicyDocument") for p in role.get("Policies", []) or []]
        docs += [r["Properties"].get("PolicyDocument") for r in resources.values()
                 if r.get("Type") == "AWS::IAM::Policy"
                 and {"Ref": role_id} in as_list(r.get("Properties", {}).get("Roles", []))]
        acts: set[str] = set()
        for doc in docs:
            for st in statements_of(doc):
                if st.get("Effect") == "Allow":
                    acts |= {a for a in as_list(st.get("Action", [])) if isinstance(a, str)}
        out[fn] = acts
    return out


def action_problems(resources: dict) -> tuple[list[str], list[str]]:
    derived, where = code_actions()
    granted = granted_actions(resources)
    problems, lines = [], []
    for fn in FUNCTION_ENTRIES:
        indirect = INDIRECT_GRANTS["*"] | INDIRECT_GRANTS.get(fn, set())
        stale = NOT_CALLED.get(fn, set()) - derived[fn]
        for a in sorted(stale):
            problems.append(f"{fn}: NOT_CALLED lists {a}, which the walk no longer reaches: remove the entry")
        derived[fn] -= NOT_CALLED.get(fn, set())
        missing = derived[fn] - granted[fn]
        extra = granted[fn] - derived[fn] - indirect
        for a in sorted(missing):
            problems.append(f"{fn}: the code calls {a} ({', '.join(sorted(where[fn][a]))}) but its role does not grant it")
        for a in sorted(extra):
            problems.append(f"{fn}: its role grants {a}, which no code path of the function calls "
                            "(remove it, or list it in INDIRECT_GRANTS with the reason)")
        lines.append(f"{fn}: calls {', '.join(sorted(derived[fn])) or 'nothing'}; "
                     f"indirect {', '.join(sorted(granted[fn] & indirect)) or 'none'}")
    return problems, lines


def action_check_self_test(resources: dict) -> list[str]:
    """The action check must notice both kinds of drift: a copy of the template whose notifier
    publishes with sns:ListTopics instead of sns:Publish must report the missing and the extra grant."""
    import copy

    mutated = copy.deepcopy(resources)
    for st in statements_of(mutated["NotifierFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]):
        if "sns:Publish" in as_list(st.get("Action", [])):
            st["Action"] = "sns:ListTopics"
    problems, _ = action_problems(mutated)
    want = ["NotifierFunction: the code calls sns:Publish", "NotifierFunction: its role grants sns:ListTopics"]
    return [f"self-test: a role with sns:Publish swapped for sns:ListTopics did not report {w!r}"
            for w in want if not any(p.startswith(w) for p in problems)]


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
    problems += tag_keys_problems(resources)
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

    problems, lines = action_problems(resources)
    problems += action_check_self_test(resources)
    for p in problems:
        print(f"check_template: actions: {p}", file=sys.stderr)
    failed |= bool(problems)
    if not problems:
        print("check_template: each function's role grants exactly the actions its code calls "
              "(plus the listed indirect grants):")
    for line in lines:
        print(f"  {line}")

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
