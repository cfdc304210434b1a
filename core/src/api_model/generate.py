"""Writes ssm-input-shapes.json: the input constraints of the SSM operations
Steward serves (lengths, patterns, enums, ranges, required members), taken
from the SSM service model that botocore ships (the AWS CLI and boto3 read the
same file). Run it after adding an operation:

    .local/venv/bin/python core/src/api_model/generate.py

Only what validation needs is kept; documentation is dropped.
"""

import gzip
import json
import pathlib
import sys

import botocore

HERE = pathlib.Path(__file__).resolve().parent

OPERATIONS = sorted("""
AddTagsToResource CancelCommand CreateActivation CreateDocument DeleteActivation DeregisterManagedInstance
DeleteDocument DeleteParameter DeleteParameters DescribeActivations DescribeDocument
DescribeInstanceInformation DescribeParameters GetCommandInvocation GetDocument
GetParameter GetParameterHistory GetParameters GetParametersByPath
LabelParameterVersion ListCommandInvocations ListCommands ListDocumentVersions
ListDocuments ListTagsForResource PutParameter RemoveTagsFromResource SendCommand
UnlabelParameterVersion UpdateDocument UpdateDocumentDefaultVersion
StartAutomationExecution GetAutomationExecution DescribeAutomationExecutions
DescribeAutomationStepExecutions StopAutomationExecution SendAutomationSignal
PutComplianceItems ListComplianceItems ListComplianceSummaries
ListResourceComplianceSummaries
CreatePatchBaseline GetPatchBaseline UpdatePatchBaseline DeletePatchBaseline
DescribePatchBaselines DescribePatchProperties RegisterDefaultPatchBaseline
GetDefaultPatchBaseline RegisterPatchBaselineForPatchGroup
DeregisterPatchBaselineForPatchGroup GetPatchBaselineForPatchGroup DescribePatchGroups
DescribeInstancePatchStates DescribeInstancePatchStatesForPatchGroup
DescribeInstancePatches DescribePatchGroupState
PutInventory GetInventory ListInventoryEntries GetInventorySchema DeleteInventory
CreateAssociation CreateAssociationBatch UpdateAssociation DescribeAssociation
ListAssociations ListAssociationVersions DeleteAssociation StartAssociationsOnce
DescribeAssociationExecutions DescribeAssociationExecutionTargets UpdateAssociationStatus
DescribeInstanceAssociationsStatus DescribeEffectiveInstanceAssociations
CreateMaintenanceWindow UpdateMaintenanceWindow GetMaintenanceWindow DeleteMaintenanceWindow
DescribeMaintenanceWindows RegisterTargetWithMaintenanceWindow UpdateMaintenanceWindowTarget
DeregisterTargetFromMaintenanceWindow DescribeMaintenanceWindowTargets
RegisterTaskWithMaintenanceWindow UpdateMaintenanceWindowTask DeregisterTaskFromMaintenanceWindow
DescribeMaintenanceWindowTasks GetMaintenanceWindowTask DescribeMaintenanceWindowExecutions
GetMaintenanceWindowExecution DescribeMaintenanceWindowExecutionTasks
GetMaintenanceWindowExecutionTask DescribeMaintenanceWindowExecutionTaskInvocations
GetMaintenanceWindowExecutionTaskInvocation CancelMaintenanceWindowExecution
DescribeMaintenanceWindowSchedule DescribeMaintenanceWindowsForTarget
StartSession ResumeSession TerminateSession DescribeSessions GetConnectionStatus
""".split())

# Java regular expressions the Rust `regex` crate cannot compile, written the
# way it can, with the same meaning.
TRANSLATED = {
    # "not blank": at least one character that is not white space.
    r"^(?!\s*$).+": r"(?s)^.*\S.*$",
}

def ascii_word(pattern):
    """Java's \\w and \\d are ASCII; the Rust regex crate's are Unicode.
    Spell them out, inside a character class or outside one."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "wd":
                body = "0-9A-Za-z_" if nxt == "w" else "0-9"
                out.append(body if in_class else f"[{body}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


# The order SSM's messages list an enum's values in, where it is known and
# differs from the model's ("Member must satisfy enum value set: [...]").
ENUM_MESSAGE_ORDER = {
    "ParameterType": ["SecureString", "StringList", "String"],
}


KEPT = ("type", "min", "max", "pattern", "enum", "sensitive")


def main():
    model_dir = pathlib.Path(botocore.__file__).parent / "data" / "ssm"
    path = sorted(model_dir.glob("*/service-2.json*"))[-1]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        model = json.load(f)
    shapes = model["shapes"]
    out_shapes = {}

    def visit(name):
        if name in out_shapes:
            return
        s = shapes[name]
        kept = {k: s[k] for k in KEPT if k in s}
        if "pattern" in kept:
            # "pattern" as SSM's messages quote it, "regex" as Rust matches it.
            kept["regex"] = ascii_word(TRANSLATED.get(kept["pattern"], kept["pattern"]))
        if name in ENUM_MESSAGE_ORDER:
            assert sorted(ENUM_MESSAGE_ORDER[name]) == sorted(kept["enum"]), name
            kept["enum"] = ENUM_MESSAGE_ORDER[name]
        out_shapes[name] = kept
        if s["type"] == "structure":
            required = set(s.get("required", []))
            kept["members"] = {
                m: {"shape": v["shape"], **({"required": True} if m in required else {})}
                for m, v in s["members"].items()
            }
            for v in s["members"].values():
                visit(v["shape"])
        elif s["type"] == "list":
            kept["member"] = s["member"]["shape"]
            visit(s["member"]["shape"])
        elif s["type"] == "map":
            kept["key"] = s["key"]["shape"]
            kept["value"] = s["value"]["shape"]
            visit(s["key"]["shape"])
            visit(s["value"]["shape"])

    operations = {}
    for op in OPERATIONS:
        shape = model["operations"][op]["input"]["shape"]
        operations[op] = shape
        visit(shape)
    doc = {
        "source": f"botocore {botocore.__version__}, ssm {model['metadata']['apiVersion']}",
        "operations": operations,
        "shapes": dict(sorted(out_shapes.items())),
    }
    target = HERE / "ssm-input-shapes.json"
    target.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {target.name}: {len(operations)} operations, {len(out_shapes)} shapes", file=sys.stderr)


if __name__ == "__main__":
    main()
