"""State Manager associations end to end, on real agents: an association on
tag role=web runs at its cron time (and not at creation, with
ApplyOnlyAtCronInterval) on the matching nodes only, its shell really runs
there; one without ApplyOnlyAtCronInterval runs at creation, and a node
registered later with the tag gets it with no new call; each node's
Association compliance shows the outcome with the association's severity;
refusals by SSM's codes that create nothing; boto3, the AWS CLI and
`steward associations`."""

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from fleet import Fleet, aws, listed, refused, ssm_client, wait_for
from schedules import daily_cron, epoch, mark_line, marks, next_minute, steward

pytestmark = pytest.mark.usefixtures("stack")

FINAL = {"Success", "Failed"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("associations"))
    f.web = web_activation(f, 3)  # web1, web2 now; web3 later
    f.add("web1", f.web)
    f.add("web2", f.web)
    f.add("db", f.activation("assoc-db", 1))  # env and suite tags, no role
    try:
        f.wait_online("web1", "web2", "db")
        yield f
    finally:
        f.stop()
        for a in listed(f.ssm, "list_associations", "Associations"):
            if (a.get("AssociationName") or "").startswith(f"e2e-{f.suite}"):
                try:
                    f.ssm.delete_association(AssociationId=a["AssociationId"])
                except f.ssm.exceptions.AssociationDoesNotExist:
                    pass  # a test deleted it meanwhile


def web_activation(fleet, limit):
    return fleet.ssm.create_activation(
        DefaultInstanceName="e2e-web", IamRole="steward-node", RegistrationLimit=limit,
        Tags=[{"Key": "role", "Value": "web"}, {"Key": "suite", "Value": fleet.suite}],
    )


def node(fleet, name):
    return fleet.agents[name].instance_id()


def web_targets(fleet):
    """tag role=web, within this suite's nodes (the demo fleet may have web nodes too)."""
    return [{"Key": "tag:role", "Values": ["web"]}, {"Key": "tag:suite", "Values": [fleet.suite]}]


def name_for(fleet, what):
    return f"e2e-{fleet.suite}-{what}"


def shell(token, *extra):
    """Commands that leave `token` in the node's state directory and in the output."""
    return [mark_line(f"{token}.mark", token), f"echo {token} ran", *extra]


def executions(ssm, association_id):
    return listed(ssm, "describe_association_executions", "AssociationExecutions", AssociationId=association_id)


def execution_targets(ssm, association_id, execution_id):
    return listed(ssm, "describe_association_execution_targets", "AssociationExecutionTargets",
                  AssociationId=association_id, ExecutionId=execution_id)


def wait_execution(ssm, association_id, nodes, timeout):
    """The association's first execution once final with a result for each of `nodes`."""

    def probe():
        for e in executions(ssm, association_id):
            if e["Status"] in FINAL:
                targets = execution_targets(ssm, association_id, e["ExecutionId"])
                if {t["ResourceId"] for t in targets} >= set(nodes):
                    return e, targets
        return None

    return wait_for(f"an execution of {association_id} on {nodes}", probe, timeout=timeout, interval=2)


def node_status(ssm, node_id, association_id):
    """The node's DescribeInstanceAssociationsStatus entry for the association, or None."""
    found = [s for s in listed(ssm, "describe_instance_associations_status", "InstanceAssociationStatusInfos",
                               InstanceId=node_id) if s["AssociationId"] == association_id]
    assert len(found) <= 1, found
    return found[0] if found else None


def association_items(ssm, node_id):
    return listed(ssm, "list_compliance_items", "ComplianceItems", ResourceIds=[node_id],
                  ResourceTypes=["ManagedInstance"],
                  Filters=[{"Key": "ComplianceType", "Values": ["Association"], "Type": "EQUAL"}])


def item_of(ssm, node_id, association_id):
    found = [i for i in association_items(ssm, node_id) if i["Id"] == association_id]
    assert len(found) <= 1, found
    return found[0] if found else None


def command_output(ssm, command_id, node_id):
    [inv] = ssm.list_command_invocations(CommandId=command_id, InstanceId=node_id, Details=True)["CommandInvocations"]
    return inv, inv["CommandPlugins"][0].get("Output", "")


def assert_nothing_reached(fleet, association_id, token, execution_ids):
    """The db node (no role tag) has no status, no compliance item, no
    invocation and no mark of the association."""
    ssm, db = fleet.ssm, node(fleet, "db")
    assert node_status(ssm, db, association_id) is None
    assert item_of(ssm, db, association_id) is None
    sent = {i["CommandId"] for i in listed(ssm, "list_command_invocations", "CommandInvocations", InstanceId=db)}
    assert not sent & set(execution_ids), sent & set(execution_ids)
    assert marks(fleet.agents["db"], f"{token}.mark") == []


def test_an_association_runs_at_creation_on_the_web_nodes_only(fleet):
    """First in the module: once it ran, the ticks have also handled the
    nodes' registrations (older than it), so the cron test that follows
    sees no run for a newly registered node."""
    ssm = fleet.ssm
    token = f"now{uuid.uuid4().hex[:8]}"
    later = next_minute(3 * 3600)  # its cron is hours away: only the creation run can come now
    a = ssm.create_association(
        Name="AWS-RunShellScript", AssociationName=name_for(fleet, "now"), Targets=web_targets(fleet),
        ScheduleExpression=daily_cron(later), Parameters={"commands": shell(token)},
    )["AssociationDescription"]
    aid = a["AssociationId"]
    assert a.get("ApplyOnlyAtCronInterval", False) is False
    web = {node(fleet, "web1"), node(fleet, "web2")}
    e, targets = wait_execution(ssm, aid, web, timeout=120)
    assert e["Status"] == "Success" and {t["ResourceId"] for t in targets} == web, (e, targets)
    for name in ("web1", "web2"):
        assert [label for label, _ in marks(fleet.agents[name], f"{token}.mark")] == [token]

    assert_nothing_reached(fleet, aid, token, [e["ExecutionId"]] + [t["OutputSource"]["OutputSourceId"] for t in targets])
    for node_id in web:
        item = wait_for("the node's Association compliance item", lambda: item_of(ssm, node_id, aid), timeout=30)
        assert (item["Status"], item["Severity"]) == ("COMPLIANT", "UNSPECIFIED"), item
    fleet.at_creation = (aid, token)


def test_a_cron_association_runs_at_its_time_on_the_web_nodes_only(fleet):
    ssm = fleet.ssm
    web = {node(fleet, "web1"), node(fleet, "web2")}
    token = f"cron{uuid.uuid4().hex[:8]}"
    due = next_minute(40)
    created_at = time.time()
    a = ssm.create_association(
        Name="AWS-RunShellScript", AssociationName=name_for(fleet, "cron"), Targets=web_targets(fleet),
        ScheduleExpression=daily_cron(due), ApplyOnlyAtCronInterval=True, ComplianceSeverity="MEDIUM",
        Parameters={"commands": shell(token)},
    )["AssociationDescription"]
    aid = a["AssociationId"]
    assert a["ApplyOnlyAtCronInterval"] is True and a["ScheduleExpression"] == daily_cron(due)
    assert due.timestamp() - created_at >= 30

    lead = due.timestamp() - time.time()
    e, targets = wait_execution(ssm, aid, web, timeout=lead + 120)
    # Not at creation: the only execution there is came at the cron time.
    runs = executions(ssm, aid)
    assert len(runs) == 1, runs
    assert epoch(e["CreatedTime"]) >= due.timestamp() - 1, (e["CreatedTime"], due)
    assert e["Status"] == "Success", e
    assert {t["ResourceId"] for t in targets} == web, targets
    for t in targets:
        assert t["Status"] == "Success", t
        assert t["OutputSource"]["OutputSourceType"] == "RunCommand", t
        command_id = t["OutputSource"]["OutputSourceId"]
        cmd = ssm.list_commands(CommandId=command_id)["Commands"][0]
        assert cmd["DocumentName"] == "AWS-RunShellScript"
        assert epoch(cmd["RequestedDateTime"]) >= due.timestamp() - 1, cmd
        inv, out = command_output(ssm, command_id, t["ResourceId"])
        assert inv["Status"] == "Success" and f"{token} ran" in out, inv

    # The shell ran on each web node, once, after the due time.
    for name in ("web1", "web2"):
        got = marks(fleet.agents[name], f"{token}.mark")
        assert [label for label, _ in got] == [token], got
        assert got[0][1] >= due.timestamp() - 1, (got, due)

    # Per node: the association's status and its compliance, with its severity.
    for node_id in web:
        status = wait_for("the node's association status", lambda: node_status(ssm, node_id, aid), timeout=30)
        assert status["Status"] == "Success", status
        assert status["AssociationName"] == name_for(fleet, "cron")
        item = wait_for("the node's Association compliance item", lambda: item_of(ssm, node_id, aid), timeout=30)
        assert (item["Status"], item["Severity"]) == ("COMPLIANT", "MEDIUM"), item
        assert item["ComplianceType"] == "Association" and item["ResourceType"] == "ManagedInstance", item

    assert_nothing_reached(fleet, aid, token, [e["ExecutionId"]] + [t["OutputSource"]["OutputSourceId"] for t in targets])
    d = ssm.describe_association(AssociationId=aid)["AssociationDescription"]
    assert d["Overview"]["Status"] == "Success", d["Overview"]
    assert d["Overview"]["AssociationStatusAggregatedCount"] == {"Success": 2}, d["Overview"]
    assert epoch(d["LastExecutionDate"]) >= due.timestamp() - 1


def test_a_node_registered_later_with_the_tag_gets_it_with_no_new_call(fleet):
    ssm = fleet.ssm
    aid, token = fleet.at_creation
    web = {node(fleet, "web1"), node(fleet, "web2")}
    # A node registered now with role=web gets it, with no call from us.
    fleet.add("web3", fleet.web)
    [web3] = fleet.wait_online("web3")
    status = wait_for("web3's run of the association",
                      lambda: (s := node_status(ssm, web3, aid)) and s["Status"] in FINAL and s, timeout=120)
    assert status["Status"] == "Success", status
    assert [label for label, _ in wait_for("web3's mark", lambda: marks(fleet.agents["web3"], f"{token}.mark"),
                                           timeout=30)] == [token]
    item = wait_for("web3's compliance item", lambda: item_of(ssm, web3, aid), timeout=30)
    assert (item["Status"], item["Severity"]) == ("COMPLIANT", "UNSPECIFIED"), item
    # web1 and web2 did not run it again for web3.
    for name in ("web1", "web2"):
        assert len(marks(fleet.agents[name], f"{token}.mark")) == 1
    all_targets = [t for run in executions(ssm, aid) for t in execution_targets(ssm, aid, run["ExecutionId"])]
    assert sorted(t["ResourceId"] for t in all_targets) == sorted(web | {web3}), all_targets
    assert_nothing_reached(fleet, aid, token, [r["ExecutionId"] for r in executions(ssm, aid)]
                           + [t["OutputSource"]["OutputSourceId"] for t in all_targets])


def test_a_failing_association_is_non_compliant_with_its_severity(fleet):
    """Created through the real AWS CLI; read back through boto3."""
    ssm = fleet.ssm
    token = f"fail{uuid.uuid4().hex[:8]}"
    name = name_for(fleet, "fail")
    a = aws("ssm", "create-association", "--name", "AWS-RunShellScript", "--association-name", name,
            "--targets", "Key=tag:role,Values=web", f"Key=tag:suite,Values={fleet.suite}",
            "--compliance-severity", "HIGH", "--max-errors", "100%",  # every node runs it, whatever fails first
            "--parameters", json.dumps({"commands": shell(token, "exit 3")}))["AssociationDescription"]
    aid = a["AssociationId"]
    assert (a["ComplianceSeverity"], a["MaxErrors"]) == ("HIGH", "100%")
    web = {node(fleet, n) for n in fleet.agents if n.startswith("web")}
    e, targets = wait_execution(ssm, aid, web, timeout=120)
    assert e["Status"] == "Failed", e
    assert {(t["ResourceId"], t["Status"]) for t in targets} == {(n, "Failed") for n in web}, targets
    for t in targets:
        inv, out = command_output(ssm, t["OutputSource"]["OutputSourceId"], t["ResourceId"])
        assert inv["Status"] == "Failed" and inv["CommandPlugins"][0]["ResponseCode"] == 3, inv
        assert f"{token} ran" in out
    for node_id in web:
        item = wait_for("the failed association's compliance item", lambda: item_of(ssm, node_id, aid), timeout=30)
        assert (item["Status"], item["Severity"]) == ("NON_COMPLIANT", "HIGH"), item
        assert item["Title"] == name, item
        summary = listed(ssm, "list_resource_compliance_summaries", "ResourceComplianceSummaryItems",
                         Filters=[{"Key": "ComplianceType", "Values": ["Association"], "Type": "EQUAL"},
                                  {"Key": "ResourceId", "Values": [node_id], "Type": "EQUAL"}])
        assert len(summary) == 1, summary
        s = summary[0]
        assert (s["Status"], s["OverallSeverity"]) == ("NON_COMPLIANT", "HIGH"), s
        assert s["NonCompliantSummary"]["NonCompliantCount"] == 1, s
        assert s["NonCompliantSummary"]["SeveritySummary"]["HighCount"] == 1, s
    d = aws("ssm", "describe-association", "--association-id", aid)["AssociationDescription"]
    assert d["Overview"]["Status"] == "Failed", d["Overview"]
    assert d["Overview"]["AssociationStatusAggregatedCount"] == {"Failed": len(web)}, d["Overview"]
    assert node_status(ssm, node(fleet, "db"), aid) is None


def assert_no_association_named(ssm, name):
    every = listed(ssm, "list_associations", "Associations")
    assert [a for a in every if a.get("AssociationName") == name] == []
    assert listed(ssm, "list_associations", "Associations",
                  AssociationFilterList=[{"key": "AssociationName", "value": name}]) == []


def test_bad_input_is_refused_and_creates_nothing(fleet):
    ssm = ssm_client(validate=False)  # the server answers, not botocore
    name = name_for(fleet, "bad")
    good = {"Name": "AWS-RunShellScript", "AssociationName": name, "Targets": web_targets(fleet),
            "Parameters": {"commands": ["true"]}}
    cases = [
        ("InvalidSchedule", {"ScheduleExpression": "cron(0/5 * * * ? *)"}),  # every 5 minutes: under SSM's 30
        ("InvalidSchedule", {"ScheduleExpression": "rate(5 minutes)"}),
        ("InvalidSchedule", {"ScheduleExpression": "rate(1 day)", "ApplyOnlyAtCronInterval": True}),
        ("InvalidDocument", {"Name": f"e2e-no-such-document-{fleet.suite}"}),
        ("ValidationException", {"Targets": [{"Key": f"tag:k{i}", "Values": ["v"]} for i in range(6)]}),
    ]
    for expected, change in cases:
        message = refused(ssm.create_association, expected, **{**good, **change})
        assert message, (expected, change)
        assert_no_association_named(ssm, name)
    # The same refusal through the real AWS CLI.
    proc = aws("ssm", "create-association", "--name", "AWS-RunShellScript", "--association-name", name,
               "--targets", "Key=tag:role,Values=web", "--schedule-expression", "cron(0/5 * * * ? *)",
               "--parameters", "commands=true", check=False)
    assert proc.returncode != 0 and "InvalidSchedule" in proc.stderr, proc.stderr
    assert_no_association_named(ssm, name)


def test_the_steward_cli_lists_shows_and_runs_associations(fleet):
    ssm = fleet.ssm
    name = name_for(fleet, "cli")
    later = next_minute(3 * 3600)
    created = steward("associations", "create", "--document", "AWS-RunShellScript",
                      "--targets", "Key=tag:role,Values=web", "--targets", f"tag:suite={fleet.suite}",
                      "--schedule", daily_cron(later), "--apply-only-at-cron-interval",
                      "--parameters", "commands=echo from the cli", "--name", name,
                      "--compliance-severity", "LOW")
    aid = created.stdout.strip()
    d = ssm.describe_association(AssociationId=aid)["AssociationDescription"]
    assert (d["AssociationName"], d["ComplianceSeverity"], d["ScheduleExpression"]) == (name, "LOW", daily_cron(later))
    assert d["ApplyOnlyAtCronInterval"] is True
    assert d["Parameters"] == {"commands": ["echo from the cli"]}

    table = steward("associations", "--name", name).stdout
    [row] = [line for line in table.splitlines() if aid in line]
    for cell in (name, "AWS-RunShellScript", "tag:role=web", daily_cron(later)):
        assert cell in row, (cell, row)
    listed_json = json.loads(steward("-o", "json", "associations", "--name", name).stdout)
    assert [a["AssociationId"] for a in listed_json["Associations"]] == [aid]
    assert listed_json["Associations"][0]["ScheduleExpression"] == daily_cron(later)

    # Run it now: it runs though its cron is hours away.
    assert f"steward associations show {aid}" in steward("associations", "run", aid).stdout
    web = {node(fleet, n) for n in fleet.agents if n.startswith("web")}
    e, _ = wait_execution(ssm, aid, web, timeout=120)
    assert e["Status"] == "Success", e
    shown = steward("associations", "show", aid).stdout
    assert f"Association  {aid}" in shown and "Compliance   LOW" in shown, shown
    assert e["ExecutionId"] in shown, shown
    shown_json = json.loads(steward("-o", "json", "associations", "show", aid).stdout)
    assert shown_json["AssociationDescription"]["AssociationId"] == aid
    assert [x["ExecutionId"] for x in shown_json["AssociationExecutions"]] == [e["ExecutionId"]]

    steward("associations", "delete", aid)
    assert_no_association_named(ssm, name)
    gone = steward("associations", "show", aid, check=False)
    assert gone.returncode == 2 and "steward associations" in gone.stderr, gone.stderr


def test_next_minute_is_far_enough_and_on_a_boundary():
    now = datetime(2024, 1, 1, 10, 0, 19, 500000, tzinfo=timezone.utc)
    assert next_minute(40, now) == datetime(2024, 1, 1, 10, 1, tzinfo=timezone.utc)
    now = datetime(2024, 1, 1, 23, 59, 30, tzinfo=timezone.utc)
    assert next_minute(40, now) == datetime(2024, 1, 2, 0, 1, tzinfo=timezone.utc)
    assert daily_cron(datetime(2024, 1, 2, 0, 1, tzinfo=timezone.utc)) == "cron(1 0 ? * * *)"
    assert next_minute(40, now) - now >= timedelta(seconds=40)


def stack_output_bucket():
    from fleet import stack_env  # the stack's own output bucket, as deployed

    return stack_env()["STEWARD_OUTPUT_BUCKET"]


def test_an_output_bucket_the_stack_cannot_write_is_refused_at_creation():
    """Refused when the association is made (or changed), not at each run."""
    ssm = ssm_client()
    suite = uuid.uuid4().hex[:8]
    name = f"e2e-{suite}-outbucket"
    foreign = f"e2e-not-this-stacks-{suite}"
    good = {"Name": "AWS-RunShellScript", "AssociationName": name,
            "Targets": [{"Key": "tag:e2e-outbucket", "Values": [suite]}],  # no node has it
            "Parameters": {"commands": ["true"]},
            "ScheduleExpression": "cron(0 2 ? * SUN *)", "ApplyOnlyAtCronInterval": True}
    message = refused(ssm.create_association, "InvalidOutputLocation",
                      **good, OutputLocation={"S3Location": {"OutputS3BucketName": foreign}})
    assert foreign in message and stack_output_bucket() in message, message
    assert_no_association_named(ssm, name)

    proc = aws("ssm", "create-association", "--name", "AWS-RunShellScript", "--association-name", name,
               "--targets", f"Key=tag:e2e-outbucket,Values={suite}", "--parameters", "commands=true",
               "--schedule-expression", "cron(0 2 ? * SUN *)", "--apply-only-at-cron-interval",
               "--output-location", json.dumps({"S3Location": {"OutputS3BucketName": foreign}}), check=False)
    assert proc.returncode != 0 and "InvalidOutputLocation" in proc.stderr, proc.stderr
    assert_no_association_named(ssm, name)

    ours = {"S3Location": {"OutputS3BucketName": stack_output_bucket(), "OutputS3KeyPrefix": "e2e"}}
    created = ssm.create_association(**good, OutputLocation=ours)["AssociationDescription"]
    aid = created["AssociationId"]
    try:
        assert created["OutputLocation"] == ours
        update = {k: v for k, v in good.items() if k != "AssociationName"}
        assert refused(ssm.update_association, "InvalidOutputLocation", AssociationId=aid, **update,
                       OutputLocation={"S3Location": {"OutputS3BucketName": foreign}})
        kept = ssm.describe_association(AssociationId=aid)["AssociationDescription"]
        assert kept["AssociationVersion"] == "1" and kept["OutputLocation"] == ours, kept
    finally:
        ssm.delete_association(AssociationId=aid)
