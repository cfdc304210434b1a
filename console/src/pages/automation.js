// Automation: the executions (DescribeAutomationExecutions, paged, filtered
// by status and document name), and one execution with its step timeline,
// polled while it runs; an aws:approve step it waits at is approved or
// rejected here (SendAutomationSignal), and a running execution stopped.
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  DescribeAutomationExecutionsCommand,
  GetAutomationExecutionCommand,
  SendAutomationSignalCommand,
  StopAutomationExecutionCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { pollUntilFinal } from "../poll.js";
import { ErrorPanel, Loading, Table, formatDate, Empty } from "../components/common.js";
import { href } from "../router.js";
import {
  EXECUTION_STATUSES,
  executionFilters,
  inputList,
  isFinal,
  newestFirst,
  signalInput,
  valueRows,
  waitingApproval,
} from "../automation-steps.js";
import "./automation.css";

const PAGE_ROWS = 100;
const POLL_MS = 2000;

function Status({ value }) {
  return html`<span class=${`status-${value || ""}`}>${value || "—"}</span>`;
}

export function AutomationPage({ query }) {
  const [status, setStatus] = useState(query?.status || "");
  const [document, setDocument] = useState(query?.document || "");
  const [applied, setApplied] = useState({ status: query?.status || "", document: query?.document || "" });
  const [executions, setExecutions] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [error, setError] = useState(null);
  const [page, setPage] = useState(0);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    setExecutions(null);
    setError(null);
    setLoaded(0);
    setPage(0);
    const filters = executionFilters(applied);
    allPages(
      (token) =>
        new DescribeAutomationExecutionsCommand({ MaxResults: 50, NextToken: token, Filters: filters.length ? filters : undefined }),
      (out) => out.AutomationExecutionMetadataList,
      (sofar) => live && setLoaded(sofar.length),
    )
      .then((all) => live && setExecutions(newestFirst(all)))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [applied, reload]);

  const rows = useMemo(() => (executions || []).slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS), [executions, page]);
  const pages = Math.max(1, Math.ceil((executions || []).length / PAGE_ROWS));

  const columns = [
    {
      label: "Execution",
      render: (e) => html`<a class="mono nowrap" href=${href(`/automation/${e.AutomationExecutionId}`)}>${e.AutomationExecutionId}</a>`,
    },
    { label: "Document", render: (e) => html`${e.DocumentName}${e.DocumentVersion ? html` <span class="muted">v${e.DocumentVersion}</span>` : null}` },
    { label: "Status", render: (e) => html`<${Status} value=${e.AutomationExecutionStatus} />` },
    { label: "Current step", render: (e) => (e.CurrentStepName ? `${e.CurrentStepName} (${e.CurrentAction || ""})` : "") },
    { label: "Started", render: (e) => formatDate(e.ExecutionStartTime) },
    { label: "Ended", render: (e) => formatDate(e.ExecutionEndTime) },
    { label: "Executed by", render: (e) => html`<span class="mono">${e.ExecutedBy || ""}</span>` },
  ];

  return html`<h1>Automation</h1>
    <form class="filters" role="search" aria-label="Filter executions"
      onSubmit=${(e) => { e.preventDefault(); setApplied({ status, document }); }}>
      <div>
        <label for="automation-status">Status</label>
        <select id="automation-status" value=${status}
          onChange=${(e) => { const v = e.currentTarget.value; setStatus(v); setApplied({ status: v, document }); }}>
          <option value="">Any</option>
          ${EXECUTION_STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <div>
        <label for="automation-document">Document name starts with</label>
        <input id="automation-document" value=${document} placeholder="Steward-" onInput=${(e) => setDocument(e.currentTarget.value)} />
      </div>
      <button type="submit">Apply filters</button>
      <button type="button" class="secondary" onClick=${() => setReload(reload + 1)}>Refresh</button>
    </form>
    ${error
      ? html`<${ErrorPanel} error=${error} title="The executions could not be listed" />`
      : executions === null
        ? html`<${Loading} label=${`Loading executions… ${loaded} so far`} />`
        : html`<p role="status" aria-live="polite" class="muted" id="automation-shown">${executions.length} executions</p>
            <${Table} caption="Automation executions, newest first" columns=${columns} rows=${rows}
              rowKey=${(e) => e.AutomationExecutionId} empty="No execution matches these filters." />
            ${pages > 1
              ? html`<nav aria-label="Execution pages" class="pager">
                  <button type="button" class="secondary" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous</button>
                  <span> Page ${page + 1} of ${pages} </span>
                  <button type="button" class="secondary" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)}>Next</button>
                </nav>`
              : null}`}`;
}

function Values({ map, empty }) {
  const rows = valueRows(map);
  if (rows.length === 0) return html`<${Empty}>${empty || "None."}<//>`;
  return html`<dl class="facts values">
    ${rows.map(([k, v]) => html`<dt>${k}</dt><dd><pre class="value">${v}</pre></dd>`)}
  </dl>`;
}

function Approval({ execution, step, onSignalled }) {
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState("");
  const [error, setError] = useState(null);
  const [done, setDone] = useState("");
  const inputs = step.Inputs || {};
  const approvers = inputList(inputs.Approvers);

  async function signal(kind) {
    setBusy(kind);
    setError(null);
    setDone("");
    try {
      await send(new SendAutomationSignalCommand(signalInput(execution.AutomationExecutionId, kind, comment)));
      setDone(kind === "Approve" ? "Approved: the execution goes on." : "Rejected: the execution ends.");
      setComment("");
      onSignalled();
    } catch (e) {
      setError(e);
    } finally {
      setBusy("");
    }
  }

  return html`<section class="approval" aria-labelledby="approval-heading">
    <h2 id="approval-heading">Waiting for approval: step ${step.StepName}</h2>
    <p class="approval-message" id="approval-message">${inputs.Message || "Approve or reject this step."}</p>
    ${approvers.length
      ? html`<p>Approvers: ${approvers.map((a) => html`<span class="tag mono">${a}</span>`)}
          ${inputs.MinRequiredApprovals ? html` (${inputs.MinRequiredApprovals} needed)` : null}</p>`
      : null}
    <form onSubmit=${(e) => e.preventDefault()}>
      <label for="approval-comment">Comment (optional)</label>
      <input id="approval-comment" class="wide" value=${comment} onInput=${(e) => setComment(e.currentTarget.value)} />
      <div class="actions">
        <button type="button" disabled=${!!busy} onClick=${() => signal("Approve")}>${busy === "Approve" ? "Approving…" : "Approve"}</button>
        <button type="button" class="danger" disabled=${!!busy} onClick=${() => signal("Reject")}>${busy === "Reject" ? "Rejecting…" : "Reject"}</button>
      </div>
    </form>
    ${done ? html`<p role="status" class="status-Success">${done}</p>` : null}
    <${ErrorPanel} error=${error} title="The signal was refused" />
  </section>`;
}

function StepCard({ step, index }) {
  const id = `step-${index}`;
  return html`<li class="step" data-step=${step.StepName} aria-labelledby=${id}>
    <h3 id=${id}>${index + 1}. ${step.StepName} <span class="muted mono">${step.Action}</span></h3>
    <dl class="facts">
      <dt>Status</dt><dd><${Status} value=${step.StepStatus} /></dd>
      <dt>Started</dt><dd>${formatDate(step.ExecutionStartTime) || "—"}</dd>
      <dt>Ended</dt><dd>${formatDate(step.ExecutionEndTime) || "—"}</dd>
      ${step.FailureMessage ? html`<dt>Failure</dt><dd class="failure">${step.FailureMessage}</dd>` : null}
    </dl>
    <details>
      <summary>Inputs</summary>
      <${Values} map=${step.Inputs} empty="No inputs." />
    </details>
    <div class="step-outputs">
      <h4>Outputs</h4>
      <${Values} map=${step.Outputs} empty=${isFinal(step.StepStatus) ? "No outputs." : "No outputs yet."} />
    </div>
  </li>`;
}

export function ExecutionPage({ params }) {
  const id = params.id;
  const [execution, setExecution] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const [stopping, setStopping] = useState(false);
  const [stopError, setStopError] = useState(null);

  useEffect(() => {
    setExecution(null);
    setError(null);
    setStopError(null);
  }, [id]);

  useEffect(
    () =>
      pollUntilFinal({
        read: () => send(new GetAutomationExecutionCommand({ AutomationExecutionId: id })),
        isFinal: (out) => isFinal(out.AutomationExecution?.AutomationExecutionStatus),
        onResult: (out) => {
          setExecution(out.AutomationExecution);
          setError(null);
        },
        onError: setError,
        every: POLL_MS,
      }),
    [id, tick],
  );

  async function stop() {
    setStopping(true);
    setStopError(null);
    try {
      await send(new StopAutomationExecutionCommand({ AutomationExecutionId: id, Type: "Cancel" }));
      setTick((t) => t + 1);
    } catch (e) {
      setStopError(e);
    } finally {
      setStopping(false);
    }
  }

  const heading = html`<h1>Automation execution <span class="mono">${id}</span></h1>
    <p><a href=${href("/automation")}>All executions</a></p>`;
  if (!execution) {
    return html`${heading}${error
      ? html`<${ErrorPanel} error=${error} title="The execution could not be read" />`
      : html`<${Loading} label="Loading the execution…" />`}`;
  }
  const e = execution;
  const status = e.AutomationExecutionStatus;
  const waiting = waitingApproval(e);
  const steps = e.StepExecutions || [];

  return html`${heading}
    <${ErrorPanel} error=${error} title="The execution could not be read again" />
    <dl class="facts">
      <dt>Document</dt><dd>${e.DocumentName}</dd>
      <dt>Version</dt><dd>${e.DocumentVersion || "—"}</dd>
      <dt>Mode</dt><dd>${e.Mode || "—"}</dd>
      <dt>Status</dt><dd><span id="execution-status" class=${`status-${status}`}>${status}</span>
        ${isFinal(status) ? null : html` <span class="muted">(refreshing every 2 seconds)</span>`}</dd>
      ${e.CurrentStepName ? html`<dt>Current step</dt><dd>${e.CurrentStepName} <span class="mono">${e.CurrentAction || ""}</span></dd>` : null}
      <dt>Started</dt><dd>${formatDate(e.ExecutionStartTime) || "—"}</dd>
      <dt>Ended</dt><dd>${formatDate(e.ExecutionEndTime) || "—"}</dd>
      <dt>Executed by</dt><dd class="mono">${e.ExecutedBy || "—"}</dd>
      ${e.ParentAutomationExecutionId
        ? html`<dt>Parent</dt><dd><a class="mono" href=${href(`/automation/${e.ParentAutomationExecutionId}`)}>${e.ParentAutomationExecutionId}</a></dd>`
        : null}
      ${e.FailureMessage ? html`<dt>Failure</dt><dd class="failure">${e.FailureMessage}</dd>` : null}
    </dl>
    ${isFinal(status) || status === "Cancelling"
      ? null
      : html`<p><button type="button" class="danger" disabled=${stopping} onClick=${stop}>${stopping ? "Stopping…" : "Stop execution"}</button></p>`}
    <${ErrorPanel} error=${stopError} title="The execution could not be stopped" />
    ${waiting ? html`<${Approval} key=${waiting.StepExecutionId || waiting.StepName} execution=${e} step=${waiting}
      onSignalled=${() => setTick((t) => t + 1)} />` : null}
    <h2>Parameters</h2>
    <${Values} map=${e.Parameters} empty="No parameters." />
    <h2>Outputs</h2>
    <${Values} map=${e.Outputs} empty=${isFinal(status) ? "No outputs." : "No outputs yet."} />
    <h2>Steps</h2>
    ${steps.length === 0
      ? html`<${Empty}>No step has started yet.<//>`
      : html`<ol class="timeline" aria-label="Step timeline">${steps.map((s, i) => html`<${StepCard} key=${s.StepExecutionId || i} step=${s} index=${i} />`)}</ol>`}`;
}

export const routes = [
  { path: "/automation", title: "Automation", nav: "Automation", order: 35, component: AutomationPage },
  { path: "/automation/:id", title: "Automation execution", component: ExecutionPage },
];
