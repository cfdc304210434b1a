// A command (ListCommands with its id) and each node's part of it
// (ListCommandInvocations, with details), updated every ~2 s while it runs,
// with each node's output as it arrives and a Cancel button; and the command
// history (ListCommands, page by page, with the API's own filters).
import { useEffect, useState } from "preact/hooks";
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { pollUntilFinal } from "../poll.js";
import { ErrorPanel, Loading, Table, formatDate } from "../components/common.js";
import { href } from "../router.js";
import "./run.css";

const FINAL = new Set(["Success", "Failed", "TimedOut", "Cancelled"]);
const CANCELLABLE = new Set(["Pending", "InProgress"]);
const STATUSES = ["Pending", "InProgress", "Success", "Failed", "TimedOut", "Cancelling", "Cancelled"];
const POLL_MS = 2000;

function Status({ value }) {
  return html`<span class=${`status-${value || ""}`}>${value || "—"}</span>`;
}

function targetsText(command) {
  if (command.InstanceIds && command.InstanceIds.length) return null;
  return (command.Targets || []).map((t) => `${t.Key} = ${(t.Values || []).join(", ")}`).join("; ");
}

function CommandFacts({ command }) {
  const targets = targetsText(command);
  const params = Object.entries(command.Parameters || {});
  return html`<dl class="facts">
    <dt>Command ID</dt><dd class="mono">${command.CommandId}</dd>
    <dt>Document</dt><dd>${command.DocumentName}${command.DocumentVersion ? ` (version ${command.DocumentVersion})` : ""}</dd>
    <dt>Status</dt><dd><${Status} value=${command.Status} />${command.StatusDetails && command.StatusDetails.replace(/ /g, "") !== command.Status ? ` (${command.StatusDetails})` : ""}</dd>
    <dt>Targets</dt>
    <dd>
      ${targets !== null
        ? targets || "—"
        : command.InstanceIds.map((id) => html`<a class="mono tag" href=${href(`/nodes/${id}`)}>${id}</a>`)}
    </dd>
    <dt>Requested</dt><dd>${formatDate(command.RequestedDateTime)}</dd>
    <dt>Rate control</dt><dd>Concurrency ${command.MaxConcurrency || "—"}, error threshold ${command.MaxErrors || "—"}</dd>
    <dt>Delivery timeout</dt><dd>${command.TimeoutSeconds ? `${command.TimeoutSeconds} s` : "—"}</dd>
    ${command.Comment ? html`<dt>Comment</dt><dd>${command.Comment}</dd>` : null}
    ${params.length
      ? html`<dt>Parameters</dt>
          <dd>
            <ul class="params">
              ${params.map(([k, v]) => html`<li><code>${k}</code>: <span class="mono">${(v || []).join("\n")}</span></li>`)}
            </ul>
          </dd>`
      : null}
  </dl>`;
}

// The whole output of one plugin on one node (GetCommandInvocation): the
// details' Output is cut at 2500 characters.
function FullOutput({ commandId, node, plugin, label }) {
  const [out, setOut] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function load() {
    setBusy(true);
    setError(null);
    try {
      setOut(await send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: node, PluginName: plugin })));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return html`<div class="full-output">
    <button type="button" class="secondary" disabled=${busy} onClick=${load}>
      ${busy ? "Reading…" : out ? `Read the full output again (${label})` : `Show standard output and error (${label})`}
    </button>
    <${ErrorPanel} error=${error} title="The output could not be read" />
    ${out
      ? html`<h4>Standard output</h4>
          <pre class="output" role="log" tabindex="0" aria-label=${`Standard output of ${label}`}>${out.StandardOutputContent || "(none)"}</pre>
          <h4>Standard error</h4>
          <pre class="output" role="log" tabindex="0" aria-label=${`Standard error of ${label}`}>${out.StandardErrorContent || "(none)"}</pre>`
      : null}
  </div>`;
}

function Invocation({ inv, commandId }) {
  const plugins = inv.CommandPlugins || [];
  const final = FINAL.has(inv.Status);
  return html`<section class="invocation" aria-label=${`Node ${inv.InstanceId}`}>
    <h3><a class="mono" href=${href(`/nodes/${inv.InstanceId}`)}>${inv.InstanceId}</a>${inv.InstanceName ? ` (${inv.InstanceName})` : ""}${": "}<${Status} value=${inv.Status} /></h3>
    ${plugins.length === 0
      ? html`<pre class="output" role="log" tabindex="0" aria-label=${`Output of ${inv.InstanceId}`}>${final ? "(no output)" : "Waiting for the node…"}</pre>`
      : plugins.map((p) => {
          const label = plugins.length > 1 ? `${inv.InstanceId}, ${p.Name}` : inv.InstanceId;
          const pluginFinal = FINAL.has(p.Status);
          return html`<div key=${p.Name}>
            <p class="plugin">
              Step <code>${p.Name}</code>: <${Status} value=${p.Status} />
              ${p.ResponseCode !== undefined && p.ResponseCode !== null && pluginFinal ? ` · exit code ${p.ResponseCode}` : ""}
              ${p.ResponseFinishDateTime && pluginFinal ? ` · finished ${formatDate(p.ResponseFinishDateTime)}` : ""}
            </p>
            <pre class="output" role="log" tabindex="0" aria-label=${`Output of ${label}`}>${p.Output || (pluginFinal ? "(no output)" : "Waiting for output…")}</pre>
            ${pluginFinal ? html`<${FullOutput} commandId=${commandId} node=${inv.InstanceId} plugin=${p.Name} label=${label} />` : null}
          </div>`;
        })}
  </section>`;
}

export function CommandPage({ params }) {
  const id = params.id;
  const [command, setCommand] = useState(undefined); // undefined: not read yet; null: no such command
  const [invocations, setInvocations] = useState(null);
  const [error, setError] = useState(null);
  const [updated, setUpdated] = useState(null);
  const [round, setRound] = useState(0); // a new round of polling (after a cancel, or to try again)
  const [cancelling, setCancelling] = useState(false);
  const [cancelError, setCancelError] = useState(null);
  const [cancelSent, setCancelSent] = useState(false);

  useEffect(() => {
    setCommand(undefined);
    setInvocations(null);
    setCancelError(null);
    setCancelSent(false);
  }, [id]);

  // Polls while the command is not final; stops when it is, on an error
  // that does not pass by itself (shown, with a button to try again), or
  // when the page is left.
  useEffect(
    () =>
      pollUntilFinal({
        read: () =>
          Promise.all([
            send(new ListCommandsCommand({ CommandId: id })),
            allPages(
              (token) => new ListCommandInvocationsCommand({ CommandId: id, Details: true, MaxResults: 50, NextToken: token }),
              (out) => out.CommandInvocations,
            ),
          ]),
        isFinal: ([c]) => {
          const cmd = (c.Commands || [])[0];
          return !cmd || FINAL.has(cmd.Status);
        },
        onResult: ([c, inv]) => {
          setCommand((c.Commands || [])[0] || null);
          setInvocations(inv);
          setError(null);
          setUpdated(new Date());
        },
        onError: setError,
        every: POLL_MS,
      }),
    [id, round],
  );

  async function cancel() {
    setCancelling(true);
    setCancelError(null);
    try {
      await send(new CancelCommandCommand({ CommandId: id }));
      setCancelSent(true);
      setRound((r) => r + 1);
    } catch (e) {
      setCancelError(e);
    } finally {
      setCancelling(false);
    }
  }

  const heading = html`<h1>Command <span class="mono">${id}</span></h1>`;
  if (command === undefined && !error) return html`${heading}<${Loading} label="Reading the command…" />`;
  if (command === undefined && error) {
    return html`${heading}<${ErrorPanel} error=${error} title="The command could not be read" />
      <p class="command-actions">
        <button type="button" class="secondary" onClick=${() => setRound((r) => r + 1)}>Try again</button>
        <a href=${href("/commands")}>See the command history</a>
      </p>`;
  }
  if (command === null) {
    return html`${heading}<p>No command has this id. <a href=${href("/commands")}>See the command history</a>.</p>`;
  }

  const final = FINAL.has(command.Status);
  const rows = invocations || [];
  const columns = [
    { label: "Node", render: (i) => html`<a class="mono" href=${href(`/nodes/${i.InstanceId}`)}>${i.InstanceId}</a>` },
    { label: "Name", render: (i) => i.InstanceName || "" },
    { label: "Status", render: (i) => html`<${Status} value=${i.Status} />` },
    { label: "Details", render: (i) => i.StatusDetails || "" },
    {
      label: "Exit code",
      render: (i) => (i.CommandPlugins || []).map((p) => p.ResponseCode).filter((c) => c !== undefined && c !== null && c !== -1).join(", "),
    },
  ];
  return html`${heading}
    <div class="command-actions">
      <span role="status" aria-live="polite" id="command-state">
        ${final
          ? `Finished: ${command.Status}.`
          : `${command.Status}${cancelSent ? " (cancel requested)" : ""}: updating every ${POLL_MS / 1000} seconds…`}
      </span>
      ${updated ? html`<span class="muted">Last read ${formatDate(updated)}.</span>` : null}
      ${CANCELLABLE.has(command.Status)
        ? html`<button type="button" class="danger" disabled=${cancelling} onClick=${cancel}>${cancelling ? "Cancelling…" : "Cancel command"}</button>`
        : null}
      <a href=${href("/run", { document: command.DocumentName })}>Run this document again</a>
      <a href=${href("/commands")}>Command history</a>
    </div>
    <${ErrorPanel} error=${cancelError} title="The command was not cancelled" />
    ${error
      ? html`<${ErrorPanel} error=${error} title="The command could not be read again; updates stopped" />
          <button type="button" class="secondary" onClick=${() => setRound((r) => r + 1)}>Try again</button>`
      : null}
    <${CommandFacts} command=${command} />
    <ul class="counts" aria-label="Command counts">
      <li><span class="n" data-count="targets">${command.TargetCount ?? 0}</span> targets</li>
      <li><span class="n" data-count="completed">${command.CompletedCount ?? 0}</span> completed</li>
      <li><span class="n" data-count="errors">${command.ErrorCount ?? 0}</span> errors</li>
      <li><span class="n" data-count="delivery-timed-out">${command.DeliveryTimedOutCount ?? 0}</span> delivery timed out</li>
    </ul>
    <h2>Nodes</h2>
    ${invocations === null
      ? html`<${Loading} label="Reading each node's status…" />`
      : html`<${Table} caption="Each node's status" columns=${columns} rows=${rows} rowKey=${(i) => i.InstanceId}
          empty=${final ? "The command reached no node." : "No node has it yet."} />`}
    ${rows.length ? html`<h2>Output</h2>` : null}
    ${rows.map((inv) => html`<${Invocation} key=${inv.InstanceId} inv=${inv} commandId=${id} />`)}`;
}

// "2026-12-02T09:30" (a datetime-local input, read as UTC) as the ISO 8601
// ListCommands' InvokedAfter filter takes; null when it is not a time.
export function invokedAfterValue(text) {
  const t = (text || "").trim();
  if (!t) return "";
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(:\d{2})?)?$/.exec(t);
  if (!m) return null;
  const iso = `${m[1]}T${m[2] || "00:00"}${m[3] || ":00"}Z`;
  return Number.isNaN(new Date(iso).getTime()) ? null : iso;
}

export function CommandsPage({ query }) {
  const [status, setStatus] = useState(query.status || "");
  const [documentName, setDocumentName] = useState(query.document || "");
  const [after, setAfter] = useState("");
  const [afterError, setAfterError] = useState(null);
  const [applied, setApplied] = useState({ status: query.status || "", documentName: query.document || "", after: "" });
  const [commands, setCommands] = useState(null);
  const [next, setNext] = useState(undefined);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);

  function filtersOf(f) {
    const out = [];
    if (f.status) out.push({ key: "Status", value: f.status });
    if (f.documentName) out.push({ key: "DocumentName", value: f.documentName });
    if (f.after) out.push({ key: "InvokedAfter", value: f.after });
    return out.length ? out : undefined;
  }

  async function load(f, token, sofar, isLive) {
    setLoading(true);
    setError(null);
    try {
      const out = await send(new ListCommandsCommand({ MaxResults: 50, NextToken: token, Filters: filtersOf(f) }));
      if (!isLive()) return;
      setCommands([...(sofar || []), ...(out.Commands || [])]);
      setNext(out.NextToken);
    } catch (e) {
      if (isLive()) setError(e);
    } finally {
      if (isLive()) setLoading(false);
    }
  }

  useEffect(() => {
    let live = true;
    setCommands(null);
    setNext(undefined);
    load(applied, undefined, [], () => live);
    return () => {
      live = false;
    };
  }, [applied]);

  function apply(e) {
    e.preventDefault();
    const a = invokedAfterValue(after);
    if (a === null) {
      setAfterError(`"${after}" is not a date and time; give one such as 2026-01-31T09:00.`);
      return;
    }
    setAfterError(null);
    setApplied({ status, documentName: documentName.trim(), after: a });
  }

  const columns = [
    { label: "Command ID", render: (c) => html`<a class="mono" href=${href(`/commands/${c.CommandId}`)}>${c.CommandId}</a>` },
    { label: "Document", key: "DocumentName" },
    { label: "Status", render: (c) => html`<${Status} value=${c.Status} />` },
    { label: "Requested", render: (c) => formatDate(c.RequestedDateTime) },
    { label: "Targets", render: (c) => String(c.TargetCount ?? 0) },
    { label: "Completed", render: (c) => String(c.CompletedCount ?? 0) },
    { label: "Errors", render: (c) => String(c.ErrorCount ?? 0) },
    { label: "Comment", key: "Comment" },
  ];

  return html`<h1>Commands</h1>
    <p><a href=${href("/run")}>Run a command</a></p>
    <form class="filters" role="search" aria-label="Filter commands" onSubmit=${apply} noValidate>
      <div>
        <label for="commands-status">Status</label>
        <select id="commands-status" value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
          <option value="">Any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <div>
        <label for="commands-document">Document name</label>
        <input id="commands-document" value=${documentName} placeholder="AWS-RunShellScript" spellcheck="false"
          onInput=${(e) => setDocumentName(e.currentTarget.value)} />
      </div>
      <div>
        <label for="commands-after">Invoked after (UTC)</label>
        <input id="commands-after" type="datetime-local" value=${after} onInput=${(e) => setAfter(e.currentTarget.value)}
          aria-invalid=${afterError ? "true" : undefined} aria-describedby=${afterError ? "commands-after-error" : undefined} />
      </div>
      <button type="submit">Apply filters</button>
    </form>
    ${afterError ? html`<p class="field-error" id="commands-after-error">${afterError}</p>` : null}
    <${ErrorPanel} error=${error} title="The commands could not be listed" />
    ${commands === null
      ? error
        ? null
        : html`<${Loading} label="Loading commands…" />`
      : html`<p role="status" aria-live="polite" class="muted" id="commands-shown">
            ${commands.length} ${commands.length === 1 ? "command" : "commands"} shown${next ? "; more are available" : ""}.
          </p>
          <div class="history">
            <${Table} caption="Commands, newest first" columns=${columns} rows=${commands} rowKey=${(c) => c.CommandId}
              empty="No command matches these filters." />
          </div>
          ${next
            ? html`<div class="history-more">
                <button type="button" class="secondary" disabled=${loading} onClick=${() => load(applied, next, commands, () => true)}>
                  ${loading ? "Loading…" : "Load more"}
                </button>
              </div>`
            : null}`}`;
}

export const routes = [
  { path: "/commands", title: "Commands", nav: "Commands", order: 30, component: CommandsPage },
  { path: "/commands/:id", title: "Command", component: CommandPage },
];
