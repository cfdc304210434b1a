// Pure helpers of the automation, compliance and maintenance window pages:
// what an execution's state means for the console, and the API's shapes as
// rows to show.

export const FINAL_STATUSES = ["Success", "Failed", "TimedOut", "Cancelled"];

export const EXECUTION_STATUSES = ["Pending", "InProgress", "Waiting", "Success", "Failed", "TimedOut", "Cancelling", "Cancelled"];

export const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"];

export function isFinal(status) {
  return FINAL_STATUSES.includes(status);
}

// DescribeAutomationExecutions' Filters for a status and a document name prefix.
export function executionFilters({ status, document } = {}) {
  const filters = [];
  if (status) filters.push({ Key: "ExecutionStatus", Values: [status] });
  const prefix = (document || "").trim();
  if (prefix) filters.push({ Key: "DocumentNamePrefix", Values: [prefix] });
  return filters;
}

// The aws:approve step an execution waits at, or null: the execution is
// Waiting and its current action is aws:approve.
export function waitingApproval(execution) {
  if (!execution || execution.AutomationExecutionStatus !== "Waiting" || execution.CurrentAction !== "aws:approve") return null;
  const steps = execution.StepExecutions || [];
  const named = steps.filter((s) => s.StepName === execution.CurrentStepName && s.Action === "aws:approve");
  const step = named[named.length - 1] || [...steps].reverse().find((s) => s.Action === "aws:approve" && !isFinal(s.StepStatus));
  return step || null;
}

// A step input as text: runbook values may be JSON text (a list of approvers).
export function inputList(value) {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.map(String);
  const text = String(value).trim();
  if (text.startsWith("[")) {
    try {
      const parsed = JSON.parse(text);
      if (Array.isArray(parsed)) return parsed.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
    } catch {
      // not JSON: shown as given
    }
  }
  return [String(value)];
}

// SendAutomationSignal's input for Approve / Reject, with the comment only when given.
export function signalInput(executionId, signalType, comment) {
  const input = { AutomationExecutionId: executionId, SignalType: signalType };
  const text = (comment || "").trim();
  if (text) input.Payload = { Comment: [text] };
  return input;
}

// A value as people read it: JSON objects (an approver's decision) laid out.
export function readable(value) {
  const text = String(value);
  if (!/^\s*\{/.test(text)) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// A map of values (Parameters, Outputs, step Inputs) as [name, text] rows, in name order.
export function valueRows(map) {
  if (!map) return [];
  return Object.keys(map)
    .sort()
    .map((k) => {
      const v = map[k];
      const text = Array.isArray(v) ? v.map(readable).join("\n") : typeof v === "string" ? readable(v) : JSON.stringify(v, null, 2);
      return [k, text];
    });
}

// The newest execution first.
export function newestFirst(executions) {
  const t = (e) => {
    const v = e.ExecutionStartTime;
    const d = v instanceof Date ? v : new Date(v || 0);
    return Number.isNaN(d.getTime()) ? 0 : d.getTime();
  };
  return [...executions].sort((a, b) => t(b) - t(a));
}

// One ComplianceSummaryItem as a row: type, counts, non-compliant by severity.
export function complianceRow(item) {
  const sev = item?.NonCompliantSummary?.SeveritySummary || {};
  const key = (s) => `${s[0]}${s.slice(1).toLowerCase()}Count`;
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, sev[key(s)] || 0]));
  return {
    type: item.ComplianceType,
    compliant: item?.CompliantSummary?.CompliantCount || 0,
    nonCompliant: item?.NonCompliantSummary?.NonCompliantCount || 0,
    bySeverity,
  };
}

// Totals over every type's row.
export function complianceTotals(rows) {
  const total = { compliant: 0, nonCompliant: 0, bySeverity: Object.fromEntries(SEVERITIES.map((s) => [s, 0])) };
  for (const r of rows) {
    total.compliant += r.compliant;
    total.nonCompliant += r.nonCompliant;
    for (const s of SEVERITIES) total.bySeverity[s] += r.bySeverity[s];
  }
  return total;
}

// ListResourceComplianceSummaries' Filters: non-compliant, of a type and an overall severity when given.
export function nonCompliantFilters({ type, severity } = {}) {
  const filters = [{ Key: "Status", Values: ["NON_COMPLIANT"], Type: "EQUAL" }];
  if (type) filters.push({ Key: "ComplianceType", Values: [type], Type: "EQUAL" });
  if (severity) filters.push({ Key: "OverallSeverity", Values: [severity], Type: "EQUAL" });
  return filters;
}

// A window's schedule as people read it: the expression and its time zone and offset.
export function scheduleText(w) {
  if (!w) return "";
  const parts = [w.Schedule];
  if (w.ScheduleTimezone) parts.push(`(${w.ScheduleTimezone})`);
  if (w.ScheduleOffset) parts.push(`+${w.ScheduleOffset} days`);
  return parts.filter(Boolean).join(" ");
}
