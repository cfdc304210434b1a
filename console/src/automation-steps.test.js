import { describe, expect, it } from "vitest";
import {
  complianceRow,
  complianceTotals,
  executionFilters,
  inputList,
  isFinal,
  newestFirst,
  nonCompliantFilters,
  scheduleText,
  signalInput,
  valueRows,
  waitingApproval,
} from "./automation-steps.js";

describe("automation", () => {
  it("knows final statuses", () => {
    expect(isFinal("Success")).toBe(true);
    expect(isFinal("Cancelled")).toBe(true);
    expect(isFinal("Waiting")).toBe(false);
    expect(isFinal("Cancelling")).toBe(false);
  });

  it("builds the list's filters", () => {
    expect(executionFilters({})).toEqual([]);
    expect(executionFilters({ status: "Waiting", document: " Steward-" })).toEqual([
      { Key: "ExecutionStatus", Values: ["Waiting"] },
      { Key: "DocumentNamePrefix", Values: ["Steward-"] },
    ]);
  });

  it("finds the approve step an execution waits at", () => {
    const approve = { StepName: "approve", Action: "aws:approve", StepStatus: "Waiting" };
    const e = { AutomationExecutionStatus: "Waiting", CurrentAction: "aws:approve", CurrentStepName: "approve", StepExecutions: [approve] };
    expect(waitingApproval(e)).toBe(approve);
    expect(waitingApproval({ ...e, AutomationExecutionStatus: "InProgress" })).toBe(null);
    expect(waitingApproval({ ...e, CurrentAction: "aws:pause" })).toBe(null);
    expect(waitingApproval({ ...e, CurrentStepName: undefined })).toBe(approve);
    expect(waitingApproval(null)).toBe(null);
  });

  it("reads list inputs", () => {
    expect(inputList('["a","b"]')).toEqual(["a", "b"]);
    expect(inputList("plain")).toEqual(["plain"]);
    expect(inputList("[not json")).toEqual(["[not json"]);
    expect(inputList(undefined)).toEqual([]);
  });

  it("sends a comment only when given", () => {
    expect(signalInput("e1", "Approve", "  ")).toEqual({ AutomationExecutionId: "e1", SignalType: "Approve" });
    expect(signalInput("e1", "Reject", " no ")).toEqual({
      AutomationExecutionId: "e1",
      SignalType: "Reject",
      Payload: { Comment: ["no"] },
    });
  });

  it("shows value maps in name order", () => {
    expect(valueRows({ b: ["x", "y"], a: "z" })).toEqual([
      ["a", "z"],
      ["b", "x\ny"],
    ]);
    expect(valueRows(undefined)).toEqual([]);
    expect(valueRows({ d: ['{"Approver":"a"}'] })).toEqual([["d", '{\n  "Approver": "a"\n}']]);
    expect(valueRows({ d: ["{not json"] })).toEqual([["d", "{not json"]]);
  });

  it("sorts newest first", () => {
    const rows = newestFirst([
      { AutomationExecutionId: "old", ExecutionStartTime: new Date(1000) },
      { AutomationExecutionId: "new", ExecutionStartTime: new Date(2000) },
    ]);
    expect(rows.map((r) => r.AutomationExecutionId)).toEqual(["new", "old"]);
  });
});

describe("compliance", () => {
  const item = {
    ComplianceType: "Custom:x",
    CompliantSummary: { CompliantCount: 2 },
    NonCompliantSummary: { NonCompliantCount: 3, SeveritySummary: { HighCount: 2, CriticalCount: 1 } },
  };

  it("counts a type by severity", () => {
    const r = complianceRow(item);
    expect(r).toMatchObject({ type: "Custom:x", compliant: 2, nonCompliant: 3 });
    expect(r.bySeverity).toEqual({ CRITICAL: 1, HIGH: 2, MEDIUM: 0, LOW: 0, INFORMATIONAL: 0, UNSPECIFIED: 0 });
    const t = complianceTotals([r, r]);
    expect(t.nonCompliant).toBe(6);
    expect(t.bySeverity.HIGH).toBe(4);
  });

  it("filters non-compliant nodes", () => {
    expect(nonCompliantFilters({})).toEqual([{ Key: "Status", Values: ["NON_COMPLIANT"], Type: "EQUAL" }]);
    expect(nonCompliantFilters({ type: "T", severity: "HIGH" })).toHaveLength(3);
  });
});

describe("maintenance windows", () => {
  it("reads a schedule", () => {
    expect(scheduleText({ Schedule: "cron(0 3 ? * * *)", ScheduleTimezone: "UTC" })).toBe("cron(0 3 ? * * *) (UTC)");
    expect(scheduleText({ Schedule: "rate(1 day)" })).toBe("rate(1 day)");
  });
});
