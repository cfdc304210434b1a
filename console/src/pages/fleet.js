// The fleet: every node (DescribeInstanceInformation, paged), counts at the
// top, filters and a search; a tag filter is the API's own (tag:<key>).
// Tags are read for the rows on show only (one ListTagsForResource each),
// patch states for every node loaded, 50 ids a call.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  DescribeInstanceInformationCommand,
  DescribeInstancePatchStatesCommand,
  ListResourceComplianceSummariesCommand,
  ListTagsForResourceCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { ApiError } from "../errors.js";
import { ErrorPanel, Loading, Table } from "../components/common.js";
import { href } from "../router.js";
import "./node.css";

const PAGE_ROWS = 100;
// SSM takes at most 50 ids in one DescribeInstancePatchStates.
const PATCH_BATCH = 50;
// Tag reads in flight at once.
const TAG_CONCURRENCY = 6;

// `items` in lists of at most `size`.
export function chunks(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// A node's patch state in a word or two: "3 missing", "1 failed", "compliant".
export function patchSummary(state) {
  if (!state) return "";
  const missing = state.MissingCount || 0;
  const failed = state.FailedCount || 0;
  const parts = [];
  if (missing) parts.push(`${missing} missing`);
  if (failed) parts.push(`${failed} failed`);
  return parts.length ? parts.join(", ") : "compliant";
}

// `fn` over `items`, at most `limit` at once; stops starting new ones once
// `stopped()` says so.
export async function eachLimited(items, limit, fn, stopped = () => false) {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stopped()) {
      const item = items[next++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// Several refusals of the page's side calls as one error to show: the first
// one's code (so its advice), every message.
export function mergeErrors(labelled) {
  const present = labelled.filter(([, e]) => e);
  if (present.length === 0) return null;
  if (present.length === 1) return present[0][1];
  const [, first] = present[0];
  const message = present.map(([label, e]) => `${label}: ${e.code ? `${e.code}: ` : ""}${e.message}`).join(" · ");
  return new ApiError(first.code, message, first.status);
}

function parseTagFilter(text) {
  const t = text.trim();
  if (!t) return null;
  const [key, ...rest] = t.split("=");
  const value = rest.join("=");
  return value ? { Key: `tag:${key.trim()}`, Values: [value.trim()] } : { Key: "tag-key", Values: [key.trim()] };
}

export function FleetPage() {
  const [nodes, setNodes] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [compliance, setCompliance] = useState({});
  const [error, setError] = useState(null);
  const [complianceError, setComplianceError] = useState(null);
  const [tagFilter, setTagFilter] = useState("");
  const [appliedTag, setAppliedTag] = useState("");
  const [ping, setPing] = useState("");
  const [platform, setPlatform] = useState("");
  const [agent, setAgent] = useState("");
  const [search, setSearch] = useState("");
  const [page, setPage] = useState(0);

  useEffect(() => {
    let live = true;
    setNodes(null);
    setError(null);
    setLoaded(0);
    const tag = parseTagFilter(appliedTag);
    allPages(
      (token) => new DescribeInstanceInformationCommand({ MaxResults: 50, NextToken: token, Filters: tag ? [tag] : undefined }),
      (out) => out.InstanceInformationList,
      (sofar) => live && setLoaded(sofar.length),
    )
      .then((all) => live && setNodes(all))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [appliedTag]);

  useEffect(() => {
    let live = true;
    allPages(
      (token) => new ListResourceComplianceSummariesCommand({ MaxResults: 50, NextToken: token }),
      (out) => out.ResourceComplianceSummaryItems,
    )
      .then((items) => {
        if (!live) return;
        const byNode = {};
        for (const i of items) {
          const prev = byNode[i.ResourceId];
          byNode[i.ResourceId] = prev === "NON_COMPLIANT" ? prev : i.Status;
        }
        setCompliance(byNode);
      })
      .catch((e) => live && setComplianceError(e));
    return () => {
      live = false;
    };
  }, []);

  const options = useMemo(() => {
    const set = (f) => [...new Set((nodes || []).map(f).filter(Boolean))].sort();
    return { platforms: set((n) => n.PlatformName), agents: set((n) => n.AgentVersion) };
  }, [nodes]);

  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    return (nodes || []).filter(
      (n) =>
        (!ping || n.PingStatus === ping) &&
        (!platform || n.PlatformName === platform) &&
        (!agent || n.AgentVersion === agent) &&
        (!q || [n.InstanceId, n.Name, n.ComputerName, n.IPAddress].some((v) => (v || "").toLowerCase().includes(q))),
    );
  }, [nodes, ping, platform, agent, search]);

  useEffect(() => setPage(0), [ping, platform, agent, search, appliedTag]);

  const rows = useMemo(() => shown.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS), [shown, page]);
  const rowIds = rows.map((n) => n.InstanceId).join(" ");

  // Tags of the rows on show, after the list; kept while the list stands.
  const [tags, setTags] = useState({});
  const [tagsError, setTagsError] = useState(null);
  const tagCache = useRef({ nodes: null, asked: new Set() });
  useEffect(() => {
    if (!nodes || !rowIds) return undefined;
    const cache = tagCache.current;
    if (cache.nodes !== nodes) {
      cache.nodes = nodes;
      cache.asked = new Set();
      setTags({});
      setTagsError(null);
    }
    let live = true;
    let refused = false;
    const wanted = rowIds.split(" ").filter((id) => !cache.asked.has(id));
    eachLimited(
      wanted,
      TAG_CONCURRENCY,
      async (id) => {
        cache.asked.add(id);
        try {
          const out = await send(new ListTagsForResourceCommand({ ResourceType: "ManagedInstance", ResourceId: id }));
          if (live) setTags((t) => ({ ...t, [id]: out.TagList || [] }));
          else cache.asked.delete(id);
        } catch (e) {
          if (!live) {
            cache.asked.delete(id);
            return;
          }
          // One refusal is shown; a key refused once is refused for every node.
          if (e.code === "AccessDeniedException") refused = true;
          setTags((t) => ({ ...t, [id]: null }));
          setTagsError(e);
        }
      },
      () => !live || refused,
    );
    return () => {
      live = false;
    };
  }, [nodes, rowIds]);

  // Patch states of every node loaded, 50 ids a call.
  const [patches, setPatches] = useState({});
  const [patchesError, setPatchesError] = useState(null);
  useEffect(() => {
    setPatches({});
    setPatchesError(null);
    if (!nodes || nodes.length === 0) return undefined;
    let live = true;
    (async () => {
      for (const ids of chunks(nodes.map((n) => n.InstanceId), PATCH_BATCH)) {
        if (!live) return;
        const states = await allPages(
          (token) => new DescribeInstancePatchStatesCommand({ InstanceIds: ids, MaxResults: 50, NextToken: token }),
          (out) => out.InstancePatchStates,
        );
        if (!live) return;
        setPatches((p) => {
          const next = { ...p };
          for (const id of ids) next[id] = null;
          for (const st of states) next[st.InstanceId] = st;
          return next;
        });
      }
    })().catch((e) => live && setPatchesError(e));
    return () => {
      live = false;
    };
  }, [nodes]);

  const sideError = useMemo(
    () => mergeErrors([["Compliance", complianceError], ["Tags", tagsError], ["Patch states", patchesError]]),
    [complianceError, tagsError, patchesError],
  );

  if (error) return html`<h1>Fleet</h1><${ErrorPanel} error=${error} title="The fleet could not be listed" />`;

  const all = nodes || [];
  const counts = {
    total: all.length,
    online: all.filter((n) => n.PingStatus === "Online").length,
    lost: all.filter((n) => n.PingStatus === "ConnectionLost").length,
    nonCompliant: all.filter((n) => compliance[n.InstanceId] === "NON_COMPLIANT").length,
  };
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_ROWS));

  const columns = [
    { label: "Node", render: (n) => html`<a href=${href(`/nodes/${n.InstanceId}`)} class="mono">${n.InstanceId}</a>` },
    { label: "Name", render: (n) => n.Name || n.ComputerName || "" },
    { label: "Ping status", render: (n) => html`<span class=${`status-${n.PingStatus}`}>${n.PingStatus}</span>` },
    { label: "Platform", render: (n) => [n.PlatformName, n.PlatformVersion].filter(Boolean).join(" ") },
    { label: "Agent version", key: "AgentVersion" },
    { label: "IP address", key: "IPAddress" },
    { label: "Association status", render: (n) => html`<span class=${`status-${n.AssociationStatus || ""}`}>${n.AssociationStatus || "—"}</span>` },
    {
      label: "Compliance",
      render: (n) => html`<span class=${`status-${compliance[n.InstanceId] || ""}`}>${compliance[n.InstanceId] || "—"}</span>`,
    },
    {
      label: "Patch",
      render: (n) => {
        const st = patches[n.InstanceId];
        if (st === undefined) return patchesError ? "—" : html`<span class="fleet-cell-muted">…</span>`;
        if (st === null) return html`<span class="fleet-cell-muted">—</span>`;
        const word = patchSummary(st);
        return html`<span class=${word === "compliant" ? "status-COMPLIANT" : "status-NON_COMPLIANT"}>${word}</span>`;
      },
    },
    {
      label: "Tags",
      render: (n) => {
        const t = tags[n.InstanceId];
        if (t === undefined) return tagsError ? "—" : html`<span class="fleet-cell-muted">…</span>`;
        if (t === null) return "—";
        if (t.length === 0) return html`<span class="fleet-cell-muted">none</span>`;
        return html`<span class="tags-cell">${t.map((x) => html`<span class="tag">${x.Value ? `${x.Key}=${x.Value}` : x.Key}</span>`)}</span>`;
      },
    },
  ];

  return html`<h1>Fleet</h1>
    <ul class="counts" aria-label="Fleet counts">
      <li><span class="n" data-count="total">${counts.total}</span> nodes</li>
      <li><span class="n" data-count="online">${counts.online}</span> online</li>
      <li><span class="n" data-count="connection-lost">${counts.lost}</span> connection lost</li>
      <li><span class="n" data-count="non-compliant">${counts.nonCompliant}</span> non-compliant</li>
    </ul>
    <form class="filters" role="search" onSubmit=${(e) => { e.preventDefault(); setAppliedTag(tagFilter); }}>
      <div>
        <label for="fleet-search">Search</label>
        <input id="fleet-search" type="search" placeholder="id, name, IP" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
      <div>
        <label for="fleet-ping">Ping status</label>
        <select id="fleet-ping" value=${ping} onChange=${(e) => setPing(e.currentTarget.value)}>
          <option value="">Any</option>
          ${["Online", "ConnectionLost", "Inactive"].map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <div>
        <label for="fleet-platform">Platform</label>
        <select id="fleet-platform" value=${platform} onChange=${(e) => setPlatform(e.currentTarget.value)}>
          <option value="">Any</option>
          ${options.platforms.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <div>
        <label for="fleet-agent">Agent version</label>
        <select id="fleet-agent" value=${agent} onChange=${(e) => setAgent(e.currentTarget.value)}>
          <option value="">Any</option>
          ${options.agents.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
      <div>
        <label for="fleet-tag">Tag (key or key=value)</label>
        <input id="fleet-tag" value=${tagFilter} placeholder="env=dev" onInput=${(e) => setTagFilter(e.currentTarget.value)} />
      </div>
      <button type="submit">Apply tag filter</button>
    </form>
    <${ErrorPanel} error=${sideError} title=${complianceError && !tagsError && !patchesError ? "Compliance could not be read" : "Some columns could not be read"} />
    ${nodes === null
      ? html`<${Loading} label=${`Loading nodes… ${loaded} so far`} />`
      : html`<p role="status" aria-live="polite" class="muted" id="fleet-shown">${shown.length} of ${all.length} nodes shown</p>
          <${Table} caption="Managed nodes" columns=${columns} rows=${rows} rowKey=${(n) => n.InstanceId}
            empty="No node matches these filters." />
          ${pages > 1
            ? html`<nav aria-label="Fleet pages" class="pager">
                <button type="button" class="secondary" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous</button>
                <span> Page ${page + 1} of ${pages} </span>
                <button type="button" class="secondary" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)}>Next</button>
              </nav>`
            : null}`}`;
}

export const routes = [{ path: "/fleet", title: "Fleet", nav: "Fleet", order: 10, component: FleetPage }];
