// Maintenance windows: every window (DescribeMaintenanceWindows, paged) with
// its schedule and next execution time; one window's upcoming executions
// (DescribeMaintenanceWindowSchedule) and recent ones
// (DescribeMaintenanceWindowExecutions).
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  DescribeMaintenanceWindowExecutionsCommand,
  DescribeMaintenanceWindowScheduleCommand,
  DescribeMaintenanceWindowsCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { ErrorPanel, Loading, Table, formatDate, Empty } from "../components/common.js";
import { href } from "../router.js";
import { scheduleText } from "../automation-steps.js";
import "./automation.css";

const PAGE_ROWS = 100;
const UPCOMING = 5;
const RECENT = 10;

function WindowPanel({ win: w, id }) {
  const [upcoming, setUpcoming] = useState(null);
  const [upcomingError, setUpcomingError] = useState(null);
  const [recent, setRecent] = useState(null);
  const [recentError, setRecentError] = useState(null);

  useEffect(() => {
    let live = true;
    setUpcoming(null);
    setUpcomingError(null);
    setRecent(null);
    setRecentError(null);
    send(new DescribeMaintenanceWindowScheduleCommand({ WindowId: id, MaxResults: UPCOMING }))
      .then((out) => live && setUpcoming(out.ScheduledWindowExecutions || []))
      .catch((e) => live && setUpcomingError(e));
    send(new DescribeMaintenanceWindowExecutionsCommand({ WindowId: id, MaxResults: RECENT }))
      .then((out) => {
        if (!live) return;
        const t = (x) => (x.StartTime ? new Date(x.StartTime).getTime() : 0);
        setRecent([...(out.WindowExecutions || [])].sort((a, b) => t(b) - t(a)));
      })
      .catch((e) => live && setRecentError(e));
    return () => {
      live = false;
    };
  }, [id]);

  const columns = [
    { label: "Execution", render: (x) => html`<span class="mono">${x.WindowExecutionId}</span>` },
    { label: "Status", render: (x) => html`<span class=${`status-${x.Status || ""}`}>${x.Status}</span>` },
    { label: "Details", key: "StatusDetails" },
    { label: "Started", render: (x) => formatDate(x.StartTime) },
    { label: "Ended", render: (x) => formatDate(x.EndTime) },
  ];

  return html`<section class="window-panel" aria-labelledby="window-panel-heading" id="window-panel">
    <h2 id="window-panel-heading">${w ? w.Name : id} <span class="muted mono">${id}</span></h2>
    ${w
      ? html`<p>${w.Description || ""}</p>
          <dl class="facts">
            <dt>Schedule</dt><dd class="mono">${scheduleText(w)}</dd>
            <dt>Enabled</dt><dd>${w.Enabled ? "Yes" : "No"}</dd>
            <dt>Duration</dt><dd>${w.Duration} hours, cutoff ${w.Cutoff} hours</dd>
            ${w.StartDate ? html`<dt>Starts</dt><dd>${formatDate(w.StartDate)}</dd>` : null}
            ${w.EndDate ? html`<dt>Ends</dt><dd>${formatDate(w.EndDate)}</dd>` : null}
          </dl>`
      : null}
    <h3>Next executions</h3>
    ${upcomingError
      ? html`<${ErrorPanel} error=${upcomingError} title="The schedule could not be read" />`
      : upcoming === null
        ? html`<${Loading} label="Loading the schedule…" />`
        : upcoming.length === 0
          ? html`<${Empty}>No execution is scheduled (the window is disabled, or its schedule has ended).<//>`
          : html`<ul aria-label="Next executions" id="window-upcoming">
              ${upcoming.map((u) => html`<li>${formatDate(u.ExecutionTime)}</li>`)}
            </ul>`}
    <h3>Recent executions</h3>
    ${recentError
      ? html`<${ErrorPanel} error=${recentError} title="The window's executions could not be listed" />`
      : recent === null
        ? html`<${Loading} label="Loading recent executions…" />`
        : html`<${Table} caption=${`The last ${RECENT} executions at most`} columns=${columns} rows=${recent}
            rowKey=${(x) => x.WindowExecutionId} empty="This window has not run yet." />`}
    <p><a href=${href("/windows")}>Close</a></p>
  </section>`;
}

export function WindowsPage({ query }) {
  const selected = query?.window || "";
  const [windows, setWindows] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [error, setError] = useState(null);
  const [search, setSearch] = useState("");
  const [enabled, setEnabled] = useState("");
  const [page, setPage] = useState(0);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    setWindows(null);
    setError(null);
    setLoaded(0);
    const filters = enabled ? [{ Key: "Enabled", Values: [enabled] }] : undefined;
    allPages(
      (token) => new DescribeMaintenanceWindowsCommand({ MaxResults: 50, NextToken: token, Filters: filters }),
      (out) => out.WindowIdentities,
      (sofar) => live && setLoaded(sofar.length),
    )
      .then((all) => live && setWindows(all))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [enabled, reload]);

  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    return (windows || []).filter((w) => !q || [w.Name, w.WindowId, w.Description].some((v) => (v || "").toLowerCase().includes(q)));
  }, [windows, search]);
  useEffect(() => setPage(0), [search, enabled]);

  const pages = Math.max(1, Math.ceil(shown.length / PAGE_ROWS));
  const rows = shown.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);
  const current = (windows || []).find((w) => w.WindowId === selected);

  const columns = [
    { label: "Name", render: (w) => html`<a href=${href("/windows", { window: w.WindowId })}>${w.Name}</a>` },
    { label: "Window ID", render: (w) => html`<span class="mono">${w.WindowId}</span>` },
    { label: "Enabled", render: (w) => (w.Enabled ? "Yes" : "No") },
    { label: "Schedule", render: (w) => html`<span class="mono">${scheduleText(w)}</span>` },
    { label: "Duration (hours)", key: "Duration" },
    { label: "Cutoff (hours)", key: "Cutoff" },
    { label: "Next execution", render: (w) => html`<span data-next=${w.WindowId}>${formatDate(w.NextExecutionTime) || "—"}</span>` },
  ];

  return html`<h1>Maintenance windows</h1>
    <form class="filters" role="search" aria-label="Filter windows" onSubmit=${(e) => e.preventDefault()}>
      <div>
        <label for="windows-search">Search</label>
        <input id="windows-search" type="search" placeholder="name or id" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
      <div>
        <label for="windows-enabled">Enabled</label>
        <select id="windows-enabled" value=${enabled} onChange=${(e) => setEnabled(e.currentTarget.value)}>
          <option value="">Any</option>
          <option value="true">Enabled</option>
          <option value="false">Disabled</option>
        </select>
      </div>
      <button type="button" class="secondary" onClick=${() => setReload(reload + 1)}>Refresh</button>
    </form>
    ${selected ? html`<${WindowPanel} key=${selected} id=${selected} win=${current} />` : null}
    ${error
      ? html`<${ErrorPanel} error=${error} title="The maintenance windows could not be listed" />`
      : windows === null
        ? html`<${Loading} label=${`Loading windows… ${loaded} so far`} />`
        : html`<p role="status" aria-live="polite" class="muted" id="windows-shown">${shown.length} of ${windows.length} windows shown</p>
            <${Table} caption="Maintenance windows; pick a name for its schedule and executions" columns=${columns} rows=${rows}
              rowKey=${(w) => w.WindowId} empty="No maintenance window matches." />
            ${pages > 1
              ? html`<nav aria-label="Window pages" class="pager">
                  <button type="button" class="secondary" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous</button>
                  <span> Page ${page + 1} of ${pages} </span>
                  <button type="button" class="secondary" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)}>Next</button>
                </nav>`
              : null}`}`;
}

export const routes = [{ path: "/windows", title: "Maintenance windows", nav: "Windows", order: 70, component: WindowsPage }];
