// Compliance: per compliance type, resources compliant and non-compliant and
// the non-compliant ones by severity (ListComplianceSummaries), and the
// non-compliant nodes (ListResourceComplianceSummaries, Status NON_COMPLIANT),
// filtered by type and overall severity.
import { useEffect, useMemo, useState } from "preact/hooks";
import { ListComplianceSummariesCommand, ListResourceComplianceSummariesCommand } from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages } from "../api.js";
import { ErrorPanel, Loading, Table, formatDate, Empty } from "../components/common.js";
import { href } from "../router.js";
import { SEVERITIES, complianceRow, complianceTotals, nonCompliantFilters } from "../automation-steps.js";
import "./automation.css";

const PAGE_ROWS = 100;
const LABEL = { CRITICAL: "Critical", HIGH: "High", MEDIUM: "Medium", LOW: "Low", INFORMATIONAL: "Informational", UNSPECIFIED: "Unspecified" };

function SummaryTable({ rows }) {
  if (rows.length === 0) return html`<${Empty}>No compliance has been reported.<//>`;
  return html`<table class="counts-table">
    <caption>Resources by compliance type; non-compliant ones by their overall severity</caption>
    <thead>
      <tr>
        <th scope="col">Compliance type</th>
        <th scope="col" class="n">Compliant</th>
        <th scope="col" class="n">Non-compliant</th>
        ${SEVERITIES.map((s) => html`<th scope="col" class="n">${LABEL[s]}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) => html`<tr key=${r.type} data-type=${r.type}>
          <th scope="row" class="mono">${r.type}</th>
          <td class="n" data-col="compliant">${r.compliant}</td>
          <td class="n" data-col="non-compliant">${r.nonCompliant}</td>
          ${SEVERITIES.map((s) => html`<td class="n" data-col=${s}>${r.bySeverity[s]}</td>`)}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function CompliancePage({ query }) {
  const [type, setType] = useState(query?.type || "");
  const [severity, setSeverity] = useState(query?.severity || "");
  const [summaries, setSummaries] = useState(null);
  const [summaryError, setSummaryError] = useState(null);
  const [types, setTypes] = useState([]);
  const [typesError, setTypesError] = useState(null);
  const [nodes, setNodes] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [nodesError, setNodesError] = useState(null);
  const [page, setPage] = useState(0);
  const [reload, setReload] = useState(0);

  // Every type, once: the type filter's choices.
  useEffect(() => {
    let live = true;
    allPages(
      (token) => new ListComplianceSummariesCommand({ MaxResults: 50, NextToken: token }),
      (out) => out.ComplianceSummaryItems,
    )
      .then((items) => live && setTypes(items.map((i) => i.ComplianceType).sort()))
      .catch((e) => live && setTypesError(e));
    return () => {
      live = false;
    };
  }, [reload]);

  useEffect(() => {
    let live = true;
    setSummaries(null);
    setSummaryError(null);
    const filters = type ? [{ Key: "ComplianceType", Values: [type], Type: "EQUAL" }] : undefined;
    allPages(
      (token) => new ListComplianceSummariesCommand({ MaxResults: 50, NextToken: token, Filters: filters }),
      (out) => out.ComplianceSummaryItems,
    )
      .then((items) => live && setSummaries(items.map(complianceRow)))
      .catch((e) => live && setSummaryError(e));
    return () => {
      live = false;
    };
  }, [type, reload]);

  useEffect(() => {
    let live = true;
    setNodes(null);
    setNodesError(null);
    setLoaded(0);
    setPage(0);
    allPages(
      (token) =>
        new ListResourceComplianceSummariesCommand({ MaxResults: 50, NextToken: token, Filters: nonCompliantFilters({ type, severity }) }),
      (out) => out.ResourceComplianceSummaryItems,
      (sofar) => live && setLoaded(sofar.length),
    )
      .then((items) => live && setNodes(items))
      .catch((e) => live && setNodesError(e));
    return () => {
      live = false;
    };
  }, [type, severity, reload]);

  const totals = useMemo(() => complianceTotals(summaries || []), [summaries]);
  const pages = Math.max(1, Math.ceil((nodes || []).length / PAGE_ROWS));
  const rows = (nodes || []).slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);

  const columns = [
    {
      label: "Node",
      render: (n) =>
        n.ResourceType === "ManagedInstance"
          ? html`<a class="mono" href=${href(`/nodes/${n.ResourceId}`)}>${n.ResourceId}</a>`
          : html`<span class="mono">${n.ResourceId}</span>`,
    },
    { label: "Compliance type", render: (n) => html`<span class="mono">${n.ComplianceType}</span>` },
    { label: "Overall severity", key: "OverallSeverity" },
    { label: "Non-compliant items", render: (n) => n.NonCompliantSummary?.NonCompliantCount ?? 0 },
    { label: "Compliant items", render: (n) => n.CompliantSummary?.CompliantCount ?? 0 },
    { label: "Reported", render: (n) => formatDate(n.ExecutionSummary?.ExecutionTime) },
    { label: "Execution", render: (n) => [n.ExecutionSummary?.ExecutionType, n.ExecutionSummary?.ExecutionId].filter(Boolean).join(" ") },
  ];

  return html`<h1>Compliance</h1>
    <form class="filters" role="search" aria-label="Filter compliance" onSubmit=${(e) => e.preventDefault()}>
      <div>
        <label for="compliance-type">Compliance type</label>
        <select id="compliance-type" value=${type} onChange=${(e) => setType(e.currentTarget.value)}>
          <option value="">Any</option>
          ${[...new Set([...types, ...(type ? [type] : [])])].map((t) => html`<option value=${t}>${t}</option>`)}
        </select>
      </div>
      <div>
        <label for="compliance-severity">Overall severity of non-compliant nodes</label>
        <select id="compliance-severity" value=${severity} onChange=${(e) => setSeverity(e.currentTarget.value)}>
          <option value="">Any</option>
          ${SEVERITIES.map((s) => html`<option value=${s}>${LABEL[s]}</option>`)}
        </select>
      </div>
      <button type="button" class="secondary" onClick=${() => setReload(reload + 1)}>Refresh</button>
    </form>
    ${typesError && !summaryError
      ? html`<${ErrorPanel} error=${typesError} title="The compliance types for the filter could not be listed" />`
      : null}
    <h2>By compliance type</h2>
    ${summaryError
      ? html`<${ErrorPanel} error=${summaryError} title="The compliance summaries could not be read" />`
      : summaries === null
        ? html`<${Loading} label="Loading compliance summaries…" />`
        : html`<ul class="counts" aria-label="Compliance counts">
              <li><span class="n" data-count="compliant">${totals.compliant}</span> compliant</li>
              <li><span class="n" data-count="non-compliant">${totals.nonCompliant}</span> non-compliant</li>
              ${SEVERITIES.map((s) => html`<li><span class="n" data-count=${s}>${totals.bySeverity[s]}</span> ${LABEL[s].toLowerCase()}</li>`)}
            </ul>
            <${SummaryTable} rows=${summaries} />`}
    <h2>Non-compliant nodes</h2>
    ${nodesError
      ? html`<${ErrorPanel} error=${nodesError} title="The non-compliant nodes could not be listed" />`
      : nodes === null
        ? html`<${Loading} label=${`Loading non-compliant nodes… ${loaded} so far`} />`
        : html`<p role="status" aria-live="polite" class="muted" id="compliance-shown">${nodes.length} non-compliant summaries</p>
            <${Table} caption="Non-compliant resources, per compliance type" columns=${columns} rows=${rows}
              rowKey=${(n) => `${n.ComplianceType}/${n.ResourceId}`} empty="No node is non-compliant for these filters." />
            ${pages > 1
              ? html`<nav aria-label="Non-compliant node pages" class="pager">
                  <button type="button" class="secondary" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous</button>
                  <span> Page ${page + 1} of ${pages} </span>
                  <button type="button" class="secondary" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)}>Next</button>
                </nav>`
              : null}`}`;
}

export const routes = [{ path: "/compliance", title: "Compliance", nav: "Compliance", order: 60, component: CompliancePage }];
