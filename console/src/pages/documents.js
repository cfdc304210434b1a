// Documents: the list (ListDocuments, paged, filtered by owner and type), a
// document's facts, content in JSON or YAML and versions, and the create form.
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  CreateDocumentCommand,
  DescribeDocumentCommand,
  GetDocumentCommand,
  ListDocumentVersionsCommand,
  ListDocumentsCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { ErrorPanel, Loading, Table, formatDate } from "../components/common.js";
import { href, navigate } from "../router.js";
import "./parameters.css";

const OWNERS = [
  { value: "Self", label: "Owned by me (Self)" },
  { value: "Amazon", label: "Amazon" },
  { value: "", label: "All" },
];
const TYPES = ["Command", "Automation", "Session", "Policy", "Package", "ChangeCalendar"];
const CREATE_TYPES = ["Command", "Automation", "Session"];
const FORMATS = ["JSON", "YAML"];
const PAGE_ROWS = 100;

const docHref = (name) => href(`/documents/${encodeURIComponent(name)}`);

export function DocumentsPage({ query }) {
  const [owner, setOwner] = useState(query.owner ?? "Self");
  const [type, setType] = useState(query.type || "");
  const [search, setSearch] = useState("");
  const [docs, setDocs] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [error, setError] = useState(null);
  const [page, setPage] = useState(0);

  useEffect(() => {
    let live = true;
    setDocs(null);
    setError(null);
    setLoaded(0);
    setPage(0);
    const filters = [];
    if (owner) filters.push({ Key: "Owner", Values: [owner] });
    if (type) filters.push({ Key: "DocumentType", Values: [type] });
    allPages(
      (token) => new ListDocumentsCommand({ MaxResults: 50, NextToken: token, Filters: filters.length ? filters : undefined }),
      (out) => out.DocumentIdentifiers,
      (sofar) => live && setLoaded(sofar.length),
    )
      .then((all) => live && setDocs(all))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [owner, type]);

  const shown = useMemo(() => {
    const q = search.trim().toLowerCase();
    return (docs || []).filter((d) => !q || d.Name.toLowerCase().includes(q));
  }, [docs, search]);
  useEffect(() => setPage(0), [search]);
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_ROWS));
  const rows = shown.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);

  const columns = [
    { label: "Name", render: (d) => html`<a href=${docHref(d.Name)} class="mono">${d.Name}</a>` },
    { label: "Type", key: "DocumentType" },
    { label: "Format", key: "DocumentFormat" },
    { label: "Owner", key: "Owner" },
    { label: "Default version", key: "DocumentVersion" },
    { label: "Platforms", render: (d) => (d.PlatformTypes || []).map((p) => html`<span class="tag">${p}</span>`) },
    { label: "Created", render: (d) => formatDate(d.CreatedDate) },
  ];

  return html`<h1>Documents</h1>
    <div class="page-actions"><a class="button-link" href=${href("/documents/new")}>Create document</a></div>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <div>
        <label for="doc-owner">Owner</label>
        <select id="doc-owner" value=${owner} onChange=${(e) => setOwner(e.currentTarget.value)}>
          ${OWNERS.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
        </select>
      </div>
      <div>
        <label for="doc-type">Document type</label>
        <select id="doc-type" value=${type} onChange=${(e) => setType(e.currentTarget.value)}>
          <option value="">Any</option>
          ${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
        </select>
      </div>
      <div>
        <label for="doc-search">Name contains</label>
        <input id="doc-search" type="search" value=${search} onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
    </form>
    ${error
      ? html`<${ErrorPanel} error=${error} title="The documents could not be listed" />`
      : docs === null
        ? html`<${Loading} label=${`Loading documents… ${loaded} so far`} />`
        : html`<p role="status" aria-live="polite" class="muted" id="doc-shown">${shown.length} of ${docs.length} documents shown</p>
            <${Table} caption="Documents" columns=${columns} rows=${rows} rowKey=${(d) => d.Name} empty="No document matches these filters." />
            ${pages > 1
              ? html`<nav aria-label="Document pages" class="pager">
                  <button type="button" class="secondary" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous</button>
                  <span> Page ${page + 1} of ${pages} </span>
                  <button type="button" class="secondary" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)}>Next</button>
                </nav>`
              : null}`}`;
}

export function DocumentPage({ params }) {
  const name = params.name;
  const [doc, setDoc] = useState(null);
  const [error, setError] = useState(null);
  const [versions, setVersions] = useState(null);
  const [versionsError, setVersionsError] = useState(null);
  const [format, setFormat] = useState("YAML");
  const [version, setVersion] = useState("");
  const [content, setContent] = useState(null);
  const [contentError, setContentError] = useState(null);

  useEffect(() => {
    let live = true;
    setDoc(null);
    setError(null);
    send(new DescribeDocumentCommand({ Name: name }))
      .then((out) => {
        if (!live) return;
        setDoc(out.Document);
        setFormat((f) => f || out.Document.DocumentFormat || "YAML");
      })
      .catch((e) => live && setError(e));
    allPages(
      (token) => new ListDocumentVersionsCommand({ Name: name, MaxResults: 50, NextToken: token }),
      (out) => out.DocumentVersions,
    )
      .then((all) => live && setVersions(all))
      .catch((e) => live && setVersionsError(e));
    return () => {
      live = false;
    };
  }, [name]);

  useEffect(() => {
    let live = true;
    setContent(null);
    setContentError(null);
    send(new GetDocumentCommand({ Name: name, DocumentFormat: format, DocumentVersion: version || undefined }))
      .then((out) => live && setContent(out))
      .catch((e) => live && setContentError(e));
    return () => {
      live = false;
    };
  }, [name, format, version]);

  const back = html`<p><a href=${href("/documents")}>← All documents</a></p>`;
  const title = html`<h1><span class="muted">Document</span> <span class="mono">${name}</span></h1>`;
  if (error) return html`${back}${title}<${ErrorPanel} error=${error} title="The document could not be read" />`;
  if (!doc) return html`${back}${title}<${Loading} label="Loading the document…" />`;

  const shownVersion = version || doc.DefaultVersion || doc.DocumentVersion;
  return html`${back}${title}
    <div class="page-actions">
      <a class="button-link" href=${href("/run", { document: name })}>Run this document</a>
    </div>
    <dl class="facts" aria-label="Document facts">
      <dt>Type</dt><dd>${doc.DocumentType}</dd>
      <dt>Format</dt><dd>${doc.DocumentFormat}</dd>
      <dt>Owner</dt><dd>${doc.Owner}</dd>
      <dt>Status</dt><dd>${doc.Status}${doc.StatusInformation ? ` (${doc.StatusInformation})` : ""}</dd>
      <dt>Schema version</dt><dd>${doc.SchemaVersion}</dd>
      <dt>Default version</dt><dd>${doc.DefaultVersion}</dd>
      <dt>Latest version</dt><dd>${doc.LatestVersion}</dd>
      ${doc.VersionName ? html`<dt>Version name</dt><dd>${doc.VersionName}</dd>` : null}
      <dt>Created</dt><dd>${formatDate(doc.CreatedDate)}</dd>
      <dt>Platforms</dt><dd>${(doc.PlatformTypes || []).map((p) => html`<span class="tag">${p}</span>`)}</dd>
      ${doc.TargetType ? html`<dt>Target type</dt><dd class="mono">${doc.TargetType}</dd>` : null}
      <dt>Description</dt><dd>${doc.Description || html`<span class="muted">none</span>`}</dd>
      ${(doc.Parameters || []).length
        ? html`<dt>Parameters</dt><dd>${doc.Parameters.map((p) => html`<span class="tag mono" title=${p.Description || ""}>${p.Name}</span>`)}</dd>`
        : null}
    </dl>
    <section aria-labelledby="doc-content-h">
      <h2 id="doc-content-h">Content (version ${shownVersion})</h2>
      <div class="doc-content-controls">
        <div>
          <label for="doc-format">Content format</label>
          <select id="doc-format" value=${format} onChange=${(e) => setFormat(e.currentTarget.value)}>
            ${FORMATS.map((f) => html`<option value=${f}>${f}</option>`)}
          </select>
        </div>
      </div>
      <${ErrorPanel} error=${contentError} title="The content could not be read" />
      ${content
        ? html`<pre class="output" aria-label=${`Content of version ${content.DocumentVersion} as ${format}`} data-format=${format}>${content.Content}</pre>`
        : contentError
          ? null
          : html`<${Loading} label="Loading the content…" />`}
    </section>
    <section aria-labelledby="doc-versions-h">
      <h2 id="doc-versions-h">Versions</h2>
      <${ErrorPanel} error=${versionsError} title="The versions could not be listed" />
      ${versions === null && !versionsError
        ? html`<${Loading} label="Loading the versions…" />`
        : html`<${Table}
            caption=${`Versions of ${name}`}
            rows=${versions || []}
            rowKey=${(v) => v.DocumentVersion}
            columns=${[
              { label: "Version", render: (v) => html`${v.DocumentVersion}${v.IsDefaultVersion ? html` <span class="tag">default</span>` : null}` },
              { label: "Name", render: (v) => v.VersionName || "" },
              { label: "Format", key: "DocumentFormat" },
              { label: "Status", key: "Status" },
              { label: "Created", render: (v) => formatDate(v.CreatedDate) },
              {
                label: "Content",
                render: (v) =>
                  v.DocumentVersion === shownVersion
                    ? html`<span class="muted">shown</span>`
                    : html`<button type="button" class="secondary" onClick=${() => setVersion(v.DocumentVersion)}>Show version ${v.DocumentVersion}</button>`,
              },
            ]}
          />`}
    </section>`;
}

export function NewDocumentPage() {
  const [name, setName] = useState("");
  const [type, setType] = useState("Command");
  const [format, setFormat] = useState("YAML");
  const [content, setContent] = useState("");
  const [error, setError] = useState(null);
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    setError(null);
    const n = name.trim();
    const problems = [];
    if (!/^[a-zA-Z0-9_.-]{3,128}$/.test(n)) problems.push("A name has 3 to 128 characters: letters, digits and _ . -");
    if (/^(aws|amazon|amzn)/i.test(n)) problems.push('A name cannot begin with "aws", "amazon" or "amzn": those are reserved.');
    if (!content.trim()) problems.push("Enter the document's content.");
    setProblem(problems.join(" "));
    if (problems.length) return;
    setBusy(true);
    try {
      await send(new CreateDocumentCommand({ Name: n, DocumentType: type, DocumentFormat: format, Content: content }));
      navigate(`/documents/${encodeURIComponent(n)}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return html`<p><a href=${href("/documents")}>← All documents</a></p>
    <h1>Create document</h1>
    <form class="doc-form" onSubmit=${submit} noValidate>
      <label for="new-doc-name">Name</label>
      <input id="new-doc-name" class="wide mono" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <label for="new-doc-type">Type</label>
      <select id="new-doc-type" value=${type} onChange=${(e) => setType(e.currentTarget.value)}>
        ${CREATE_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select>
      <label for="new-doc-format">Format</label>
      <select id="new-doc-format" value=${format} onChange=${(e) => setFormat(e.currentTarget.value)}>
        ${FORMATS.map((f) => html`<option value=${f}>${f}</option>`)}
      </select>
      <label for="new-doc-content">Content</label>
      <textarea id="new-doc-content" rows="16" value=${content} onInput=${(e) => setContent(e.currentTarget.value)}
        placeholder=${format === "JSON" ? '{ "schemaVersion": "2.2", "mainSteps": [ … ] }' : 'schemaVersion: "2.2"\nmainSteps: …'}></textarea>
      ${problem ? html`<div class="error" role="alert"><p><strong>Not sent:</strong> ${problem}</p></div>` : null}
      <button type="submit" disabled=${busy}>Create document</button>
      <${ErrorPanel} error=${error} title="The document was not created" />
    </form>`;
}

export const routes = [
  { path: "/documents", title: "Documents", nav: "Documents", order: 50, component: DocumentsPage },
  { path: "/documents/new", title: "Create document", order: 50.1, component: NewDocumentPage },
  { path: "/documents/:name", title: "Document", order: 50.2, component: DocumentPage },
];
