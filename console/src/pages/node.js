// One managed node: what DescribeInstanceInformation says of it, its tags
// (editable), the commands sent to it, its inventory, patch state and
// associations. Each section makes its own calls: one the key's policy
// refuses shows its error, and the others still load.
import { useCallback, useEffect, useState } from "preact/hooks";
import {
  AddTagsToResourceCommand,
  DescribeInstanceAssociationsStatusCommand,
  DescribeInstanceInformationCommand,
  DescribeInstancePatchStatesCommand,
  ListCommandInvocationsCommand,
  ListInventoryEntriesCommand,
  ListTagsForResourceCommand,
  RemoveTagsFromResourceCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { Empty, ErrorPanel, Loading, Table, formatDate } from "../components/common.js";
import { href } from "../router.js";
import "./node.css";

export const RESOURCE_TYPE = "ManagedInstance";

export const INVENTORY_TYPES = [
  { type: "AWS:Application", title: "Applications", columns: ["Name", "Version", "Publisher", "Architecture", "InstalledTime"] },
  { type: "AWS:Network", title: "Network interfaces", columns: ["Name", "IPV4", "IPV6", "MacAddress", "Gateway", "DHCPServer", "DNSServer"] },
  { type: "AWS:Service", title: "Services", columns: ["Name", "DisplayName", "Status", "StartType", "ServiceType"] },
];

// The columns an inventory table shows: the preferred ones its entries have,
// else (an unknown shape) the first keys found, at most `max`.
export function inventoryColumns(entries, preferred = [], max = 6) {
  const keys = new Set();
  for (const e of entries || []) for (const k of Object.keys(e || {})) keys.add(k);
  const known = preferred.filter((k) => keys.has(k));
  if (known.length) return known;
  return [...keys].slice(0, max);
}

// The facts of a node, in the order a person reads them: [label, value].
export function nodeFacts(info) {
  if (!info) return [];
  const platform = [info.PlatformName, info.PlatformVersion].filter(Boolean).join(" ");
  return [
    ["Node ID", info.InstanceId],
    ["Name", info.Name],
    ["Ping status", info.PingStatus],
    ["Last ping", formatDate(info.LastPingDateTime)],
    ["Platform", platform],
    ["Platform type", info.PlatformType],
    ["Agent version", info.AgentVersion],
    ["Latest agent version", info.IsLatestVersion === undefined ? undefined : info.IsLatestVersion ? "Yes" : "No"],
    ["IP address", info.IPAddress],
    ["Computer name", info.ComputerName],
    ["Resource type", info.ResourceType],
    ["IAM role", info.IamRole],
    ["Registration date", formatDate(info.RegistrationDate)],
    ["Activation ID", info.ActivationId],
    ["Association status", info.AssociationStatus],
    ["Last association", formatDate(info.LastAssociationExecutionDate)],
    ["Last successful association", formatDate(info.LastSuccessfulAssociationExecutionDate)],
    ["Source", [info.SourceType, info.SourceId].filter(Boolean).join(" ")],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
}

// A patch state as facts: counts, baseline and the last operation.
export function patchFacts(s) {
  if (!s) return [];
  const n = (v) => (v === undefined || v === null ? undefined : String(v));
  return [
    ["Baseline", s.BaselineId],
    ["Patch group", s.PatchGroup],
    ["Operation", s.Operation],
    ["Installed", n(s.InstalledCount)],
    ["Installed (other)", n(s.InstalledOtherCount)],
    ["Installed (pending reboot)", n(s.InstalledPendingRebootCount)],
    ["Installed (rejected)", n(s.InstalledRejectedCount)],
    ["Missing", n(s.MissingCount)],
    ["Failed", n(s.FailedCount)],
    ["Not applicable", n(s.NotApplicableCount)],
    ["Operation started", formatDate(s.OperationStartTime)],
    ["Last operation", formatDate(s.OperationEndTime)],
    ["Reboot option", s.RebootOption],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
}

// One call's state: { data, error, loading, reload }. `load` runs again
// when `deps` change or `reload()` is called.
function useCall(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, error: null, loading: true }));
    Promise.resolve()
      .then(() => load((partial) => live && setState((s) => ({ ...s, data: partial }))))
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((error) => live && setState({ data: undefined, error, loading: false }));
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

function Facts({ facts }) {
  return html`<dl class="facts">
    ${facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}
  </dl>`;
}

function Section({ id, title, children, actions }) {
  return html`<section class="node-section" aria-labelledby=${`${id}-h`} id=${id}>
    <div class="node-section-head">
      <h2 id=${`${id}-h`}>${title}</h2>
      ${actions}
    </div>
    ${children}
  </section>`;
}

function Refresh({ onClick, what }) {
  return html`<button type="button" class="secondary" onClick=${onClick}>Refresh<span class="sr-only"> ${what}</span></button>`;
}

function Information({ id, info }) {
  let body;
  if (info.error) body = html`<${ErrorPanel} error=${info.error} title="The node could not be described" />`;
  else if (info.loading && !info.data) body = html`<${Loading} label="Loading the node…" />`;
  else if (!info.data) body = html`<${Empty}>No registered node has the ID <code>${id}</code>. It may have been deregistered.<//>`;
  else body = html`<${Facts} facts=${nodeFacts(info.data)} />`;
  return html`<${Section} id="node-info" title="Information" actions=${html`<${Refresh} onClick=${info.reload} what="information" />`}>${body}<//>`;
}

function Tags({ id }) {
  const tags = useCall(
    () => send(new ListTagsForResourceCommand({ ResourceType: RESOURCE_TYPE, ResourceId: id })).then((o) => o.TagList || []),
    [id],
  );
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [changeError, setChangeError] = useState(null);
  const [done, setDone] = useState("");

  const add = async (e) => {
    e.preventDefault();
    const k = key.trim();
    if (!k) return;
    setBusy(true);
    setChangeError(null);
    setDone("");
    try {
      await send(new AddTagsToResourceCommand({ ResourceType: RESOURCE_TYPE, ResourceId: id, Tags: [{ Key: k, Value: value }] }));
      setKey("");
      setValue("");
      setDone(`Tag ${k} added.`);
      tags.reload();
    } catch (err) {
      setChangeError(err);
    } finally {
      setBusy(false);
    }
  };
  const remove = async (k) => {
    setBusy(true);
    setChangeError(null);
    setDone("");
    try {
      await send(new RemoveTagsFromResourceCommand({ ResourceType: RESOURCE_TYPE, ResourceId: id, TagKeys: [k] }));
      setDone(`Tag ${k} removed.`);
      tags.reload();
    } catch (err) {
      setChangeError(err);
    } finally {
      setBusy(false);
    }
  };

  let list;
  if (tags.error) list = html`<${ErrorPanel} error=${tags.error} title="The tags could not be listed" />`;
  else if (tags.data === undefined) list = html`<${Loading} label="Loading tags…" />`;
  else
    list = html`<${Table}
      caption="Tags"
      columns=${[
        { label: "Key", render: (t) => html`<span class="mono">${t.Key}</span>` },
        { label: "Value", render: (t) => html`<span class="mono">${t.Value}</span>` },
        {
          label: "Actions",
          render: (t) => html`<button type="button" class="danger" disabled=${busy} onClick=${() => remove(t.Key)}>
            Remove<span class="sr-only"> tag ${t.Key}</span>
          </button>`,
        },
      ]}
      rows=${tags.data}
      rowKey=${(t) => t.Key}
      empty="This node has no tags."
    />`;

  return html`<${Section} id="node-tags" title="Tags" actions=${html`<${Refresh} onClick=${tags.reload} what="tags" />`}>
    ${list}
    <form class="filters node-tag-form" onSubmit=${add} aria-label="Add a tag">
      <div>
        <label for="node-tag-key">Tag key</label>
        <input id="node-tag-key" required maxlength="128" value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
      </div>
      <div>
        <label for="node-tag-value">Tag value</label>
        <input id="node-tag-value" maxlength="256" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
      </div>
      <button type="submit" disabled=${busy}>Add tag</button>
    </form>
    <${ErrorPanel} error=${changeError} title="The tags could not be changed" />
    <p class="muted" role="status" aria-live="polite">${done}</p>
  <//>`;
}

function Commands({ id }) {
  const calls = useCall(
    () => send(new ListCommandInvocationsCommand({ InstanceId: id, MaxResults: 20 })).then((o) => o.CommandInvocations || []),
    [id],
  );
  let body;
  if (calls.error) body = html`<${ErrorPanel} error=${calls.error} title="The commands could not be listed" />`;
  else if (calls.data === undefined) body = html`<${Loading} label="Loading commands…" />`;
  else
    body = html`<${Table}
      caption="The latest 20 commands sent to this node"
      columns=${[
        { label: "Command ID", render: (c) => html`<a class="mono" href=${href(`/commands/${c.CommandId}`)}>${c.CommandId}</a>` },
        { label: "Document", key: "DocumentName" },
        { label: "Comment", key: "Comment" },
        { label: "Status", render: (c) => html`<span class=${`status-${c.Status}`}>${c.StatusDetails && c.StatusDetails !== c.Status ? `${c.Status} (${c.StatusDetails})` : c.Status}</span>` },
        { label: "Requested", render: (c) => formatDate(c.RequestedDateTime) },
      ]}
      rows=${calls.data}
      rowKey=${(c) => c.CommandId}
      empty="No command has been sent to this node."
    />`;
  return html`<${Section} id="node-commands" title="Recent commands" actions=${html`<${Refresh} onClick=${calls.reload} what="commands" />`}>${body}<//>`;
}

const INVENTORY_ROWS = 50;

function InventoryType({ id, spec }) {
  const slug = spec.type.replace(/[^A-Za-z0-9]/g, "-").toLowerCase();
  const [loaded, setLoaded] = useState(0);
  const [all, setAll] = useState(false);
  const inv = useCall(
    (partial) => {
      setLoaded(0);
      let capture;
      return allPages(
        (token) => new ListInventoryEntriesCommand({ InstanceId: id, TypeName: spec.type, MaxResults: 50, NextToken: token }),
        (out) => {
          capture = capture || out.CaptureTime;
          return out.Entries;
        },
        (sofar) => setLoaded(sofar.length),
      ).then((entries) => ({ entries, capture }));
    },
    [id, spec.type],
  );
  let body;
  if (inv.error) body = html`<${ErrorPanel} error=${inv.error} title=${`${spec.title} could not be listed`} />`;
  else if (inv.data === undefined) body = html`<${Loading} label=${`Loading ${spec.title.toLowerCase()}… ${loaded} so far`} />`;
  else {
    const { entries, capture } = inv.data;
    const cols = inventoryColumns(entries, spec.columns);
    const rows = all ? entries : entries.slice(0, INVENTORY_ROWS);
    body = html`${capture ? html`<p class="muted">Captured ${formatDate(capture)}; ${entries.length} entries.</p>` : null}
      <${Table}
        caption=${`${spec.title} (${spec.type})`}
        columns=${cols.map((c) => ({ label: c, render: (e) => e[c] ?? "" }))}
        rows=${rows}
        empty=${`No ${spec.type} inventory has been collected from this node.`}
      />
      ${entries.length > INVENTORY_ROWS
        ? html`<button type="button" class="secondary" onClick=${() => setAll(!all)}>
            ${all ? `Show the first ${INVENTORY_ROWS}` : `Show all ${entries.length}`}<span class="sr-only"> ${spec.title.toLowerCase()}</span>
          </button>`
        : null}`;
  }
  return html`<section class="node-subsection" aria-labelledby=${`node-inv-${slug}-h`}>
    <h3 id=${`node-inv-${slug}-h`}>${spec.title}</h3>
    ${body}
  </section>`;
}

function Inventory({ id }) {
  return html`<${Section} id="node-inventory" title="Inventory">
    ${INVENTORY_TYPES.map((spec) => html`<${InventoryType} key=${spec.type} id=${id} spec=${spec} />`)}
  <//>`;
}

function Patches({ id }) {
  const st = useCall(
    () => send(new DescribeInstancePatchStatesCommand({ InstanceIds: [id] })).then((o) => (o.InstancePatchStates || [])[0] || null),
    [id],
  );
  let body;
  if (st.error) body = html`<${ErrorPanel} error=${st.error} title="The patch state could not be read" />`;
  else if (st.data === undefined) body = html`<${Loading} label="Loading the patch state…" />`;
  else if (st.data === null) body = html`<${Empty}>No patch state: this node has not been scanned or patched yet.<//>`;
  else body = html`<${Facts} facts=${patchFacts(st.data)} />`;
  return html`<${Section} id="node-patches" title="Patch state" actions=${html`<${Refresh} onClick=${st.reload} what="patch state" />`}>${body}<//>`;
}

function Associations({ id }) {
  const as = useCall(
    () =>
      allPages(
        (token) => new DescribeInstanceAssociationsStatusCommand({ InstanceId: id, MaxResults: 50, NextToken: token }),
        (out) => out.InstanceAssociationStatusInfos,
      ),
    [id],
  );
  let body;
  if (as.error) body = html`<${ErrorPanel} error=${as.error} title="The associations could not be listed" />`;
  else if (as.data === undefined) body = html`<${Loading} label="Loading associations…" />`;
  else
    body = html`<${Table}
      caption="Associations applied to this node"
      columns=${[
        { label: "Name", render: (a) => a.AssociationName || a.Name },
        { label: "Document", key: "Name" },
        { label: "Association ID", render: (a) => html`<span class="mono">${a.AssociationId}</span>` },
        { label: "Status", render: (a) => html`<span class=${`status-${a.Status}`}>${a.Status}</span>` },
        { label: "Detailed status", key: "DetailedStatus" },
        { label: "Execution date", render: (a) => formatDate(a.ExecutionDate) },
      ]}
      rows=${as.data}
      rowKey=${(a) => a.AssociationId}
      empty="No association applies to this node."
    />`;
  return html`<${Section} id="node-associations" title="Associations" actions=${html`<${Refresh} onClick=${as.reload} what="associations" />`}>${body}<//>`;
}

export function NodePage({ params }) {
  const id = params.id;
  const info = useCall(
    () =>
      send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [id] }] })).then(
        (o) => (o.InstanceInformationList || []).find((n) => n.InstanceId === id) || null,
      ),
    [id],
  );
  const name = info.data ? info.data.Name || info.data.ComputerName : "";
  return html`<p class="crumbs"><a href=${href("/fleet")}>Fleet</a> / <span class="mono">${id}</span></p>
    <div class="node-head">
      <h1>Node <span class="mono">${id}</span>${name ? html` <span class="node-name">(${name})</span>` : null}</h1>
      ${info.data
        ? html`<span class=${`status-${info.data.PingStatus} node-ping`}>${info.data.PingStatus}</span>`
        : null}
      <a class="button-link" href=${href("/run", { target: id })}>Run command on this node</a>
    </div>
    <${Information} id=${id} info=${info} />
    <${Tags} key=${`tags-${id}`} id=${id} />
    <${Commands} key=${`commands-${id}`} id=${id} />
    <${Patches} key=${`patches-${id}`} id=${id} />
    <${Associations} key=${`associations-${id}`} id=${id} />
    <${Inventory} key=${`inventory-${id}`} id=${id} />`;
}

export const routes = [{ path: "/nodes/:id", title: "Node", order: 11, component: NodePage }];
