// Parameter Store: the hierarchy as a tree (DescribeParameters, paged), a
// parameter's facts, value, history and labels, and the put and delete forms.
// A SecureString's value is shown only when asked for, decrypted by the API
// under the key's own policy (kms:Decrypt).
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  DeleteParameterCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { ApiError } from "../errors.js";
import { ErrorPanel, Loading, Table, formatDate } from "../components/common.js";
import { href, navigate } from "../router.js";
import { currentSession } from "../session.js";
import { TIERS, TYPES, ancestors, buildTree, filterByName, putProblems } from "../parameter-tree.js";
import "./parameters.css";

const viewHref = (name) => href("/parameters/view", { name });

// --- the tree ------------------------------------------------------------------

function Folder({ node, open, onToggle, forceOpen }) {
  const isOpen = forceOpen || open.has(node.path);
  return html`<li class="param-folder">
    <details open=${isOpen} onToggle=${(e) => onToggle(node.path, e.currentTarget.open)}>
      <summary><span class="folder-name">${node.segment}/</span> <span class="muted">(${node.count})</span></summary>
      ${isOpen ? html`<${Level} node=${node} open=${open} onToggle=${onToggle} forceOpen=${forceOpen} />` : null}
    </details>
  </li>`;
}

function Level({ node, open, onToggle, forceOpen, label }) {
  return html`<ul class="param-tree" aria-label=${label}>
    ${node.folders.map((f) => html`<${Folder} key=${`f:${f.path}`} node=${f} open=${open} onToggle=${onToggle} forceOpen=${forceOpen} />`)}
    ${node.parameters.map(
      (p) => html`<li key=${`p:${p.name}`} class="param-leaf">
        <a href=${viewHref(p.name)} title=${p.name}>${p.segment}</a>
        <span class="tag">${p.meta.Type}</span>
        ${p.meta.Tier && p.meta.Tier !== "Standard" ? html`<span class="tag">${p.meta.Tier}</span>` : null}
      </li>`,
    )}
  </ul>`;
}

export function ParametersPage({ query }) {
  const [items, setItems] = useState(null);
  const [loaded, setLoaded] = useState(0);
  const [error, setError] = useState(null);
  const [filter, setFilter] = useState(query.filter || "");
  const [open, setOpen] = useState(() => new Set(query.open ? ancestors(query.open) : []));

  useEffect(() => {
    let live = true;
    allPages(
      (token) => new DescribeParametersCommand({ MaxResults: 50, NextToken: token }),
      (out) => out.Parameters,
      (sofar) => live && setLoaded(sofar.length),
    )
      .then((all) => live && setItems(all))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, []);

  const shown = useMemo(() => filterByName(items || [], filter), [items, filter]);
  const tree = useMemo(() => buildTree(shown), [shown]);
  const onToggle = (path, isOpen) =>
    setOpen((prev) => {
      if (prev.has(path) === isOpen) return prev;
      const next = new Set(prev);
      if (isOpen) next.add(path);
      else next.delete(path);
      return next;
    });
  const filtering = filter.trim() !== "";

  return html`<h1>Parameters</h1>
    <div class="page-actions"><a href=${href("/parameters/new")} class="button-link">Create parameter</a></div>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <div>
        <label for="param-filter">Filter by name</label>
        <input id="param-filter" type="search" placeholder="/app/db" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
      </div>
    </form>
    ${error
      ? html`<${ErrorPanel} error=${error} title="The parameters could not be listed" />`
      : items === null
        ? html`<${Loading} label=${`Loading parameters… ${loaded} so far`} />`
        : html`<p role="status" aria-live="polite" class="muted" id="param-shown">${shown.length} of ${items.length} parameters shown${filtering ? " (folders opened)" : ""}</p>
            ${shown.length === 0
              ? html`<p class="empty">${items.length ? "No parameter matches this filter." : "No parameters yet."}</p>`
              : html`<nav aria-label="Parameter hierarchy" class="param-tree-nav">
                  <${Level} node=${tree} open=${open} onToggle=${onToggle} forceOpen=${filtering} label="Top level" />
                </nav>`}`}`;
}

// --- one parameter -------------------------------------------------------------

function Labels({ labels }) {
  return (labels || []).length ? labels.map((l) => html`<span class="tag">${l}</span>`) : html`<span class="muted">none</span>`;
}

function ConfirmDelete({ name }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function remove() {
    setBusy(true);
    setError(null);
    try {
      await send(new DeleteParameterCommand({ Name: name }));
      navigate("/parameters");
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  }
  return html`<section aria-labelledby="param-delete-h">
    <h2 id="param-delete-h">Delete</h2>
    ${asking
      ? html`<div class="confirm" role="group" aria-label="Confirm deletion">
          <p>Delete <code>${name}</code> and all its versions? This cannot be undone.</p>
          <button type="button" class="danger" disabled=${busy} onClick=${remove}>Yes, delete this parameter</button>
          ${" "}<button type="button" class="secondary" onClick=${() => setAsking(false)}>Cancel</button>
        </div>`
      : html`<button type="button" class="danger" onClick=${() => setAsking(true)}>Delete parameter…</button>`}
    <${ErrorPanel} error=${error} title="The parameter could not be deleted" />
  </section>`;
}

function LabelForm({ name, versions, onLabelled }) {
  const [version, setVersion] = useState("");
  const [label, setLabel] = useState("");
  const [error, setError] = useState(null);
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const chosen = version || String(versions[0] ?? "");
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone("");
    try {
      const out = await send(
        new LabelParameterVersionCommand({ Name: name, ParameterVersion: chosen ? Number(chosen) : undefined, Labels: [label.trim()] }),
      );
      if (out.InvalidLabels && out.InvalidLabels.length) {
        setError(
          new ApiError(
            "InvalidLabels",
            `Not a valid label: ${out.InvalidLabels.join(", ")}. A label has at most 100 characters (letters, digits, . - _), does not begin with a digit, "aws" or "ssm".`,
          ),
        );
      } else {
        setDone(`Label ${label.trim()} is on version ${out.ParameterVersion}.`);
        setLabel("");
        onLabelled();
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<section aria-labelledby="param-label-h">
    <h2 id="param-label-h">Label a version</h2>
    <form class="filters" onSubmit=${submit}>
      <div>
        <label for="label-version">Version</label>
        <select id="label-version" value=${chosen} onChange=${(e) => setVersion(e.currentTarget.value)}>
          ${versions.map((v) => html`<option value=${String(v)}>${v}</option>`)}
        </select>
      </div>
      <div>
        <label for="label-name">Label</label>
        <input id="label-name" required value=${label} onInput=${(e) => setLabel(e.currentTarget.value)} />
      </div>
      <button type="submit" disabled=${busy}>Add label</button>
    </form>
    ${done ? html`<p role="status" class="ok">${done}</p>` : null}
    <${ErrorPanel} error=${error} title="The label was refused" />
  </section>`;
}

export function ParameterPage({ query }) {
  const name = query.name || "";
  const [param, setParam] = useState(null);
  const [meta, setMeta] = useState(null);
  const [history, setHistory] = useState(null);
  const [error, setError] = useState(null);
  const [historyError, setHistoryError] = useState(null);
  const [metaError, setMetaError] = useState(null);
  const [plain, setPlain] = useState(null);
  const [decryptError, setDecryptError] = useState(null);
  const [decrypting, setDecrypting] = useState(false);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    setError(null);
    setMetaError(null);
    setPlain(null);
    setDecryptError(null);
    send(new GetParameterCommand({ Name: name }))
      .then((out) => live && setParam(out.Parameter))
      .catch((e) => live && setError(e));
    send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Values: [name] }] }))
      .then((out) => live && setMeta((out.Parameters || [])[0] || {}))
      .catch((e) => {
        if (!live) return;
        setMeta({});
        setMetaError(e);
      });
    return () => {
      live = false;
    };
  }, [name, reload]);

  useEffect(() => {
    let live = true;
    setHistoryError(null);
    allPages(
      (token) => new GetParameterHistoryCommand({ Name: name, MaxResults: 50, NextToken: token, WithDecryption: plain !== null }),
      (out) => out.Parameters,
    )
      .then((all) => live && setHistory(all.slice().sort((a, b) => b.Version - a.Version)))
      .catch((e) => live && setHistoryError(e));
    return () => {
      live = false;
    };
  }, [name, reload, plain !== null]);

  async function showValue() {
    setDecrypting(true);
    setDecryptError(null);
    try {
      const out = await send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      setPlain(out.Parameter.Value);
    } catch (e) {
      setDecryptError(e);
    } finally {
      setDecrypting(false);
    }
  }

  const title = html`<h1><span class="muted">Parameter</span> <span class="mono">${name}</span></h1>`;
  const back = html`<p><a href=${href("/parameters", { open: name })}>← All parameters</a></p>`;
  if (!name) return html`<h1>Parameter</h1><p>No parameter named. <a href=${href("/parameters")}>Pick one from the tree</a>.</p>`;
  if (error) return html`${back}${title}<${ErrorPanel} error=${error} title="The parameter could not be read" />`;
  if (!param) return html`${back}${title}<${Loading} label="Loading the parameter…" />`;

  const secure = param.Type === "SecureString";
  const m = meta || {};
  const current = (history || []).find((h) => h.Version === param.Version);
  return html`${back}${title}
    <div class="page-actions"><a class="button-link" href=${href("/parameters/edit", { name })}>Edit (new version)</a></div>
    <${ErrorPanel} error=${metaError} title="The description, tier and policies could not be read (DescribeParameters)" />
    <dl class="facts" aria-label="Parameter facts">
      <dt>Type</dt><dd data-fact="type">${param.Type}</dd>
      <dt>Version</dt><dd data-fact="version">${param.Version}</dd>
      <dt>Last modified</dt><dd>${formatDate(param.LastModifiedDate)}${m.LastModifiedUser ? html` by <span class="mono">${m.LastModifiedUser}</span>` : null}</dd>
      <dt>Description</dt><dd>${m.Description || html`<span class="muted">none</span>`}</dd>
      <dt>Tier</dt><dd>${m.Tier || "Standard"}</dd>
      <dt>Data type</dt><dd>${param.DataType || m.DataType || "text"}</dd>
      <dt>Labels</dt><dd><${Labels} labels=${current ? current.Labels : []} /></dd>
      ${m.AllowedPattern ? html`<dt>Allowed pattern</dt><dd class="mono">${m.AllowedPattern}</dd>` : null}
      ${secure && m.KeyId ? html`<dt>KMS key</dt><dd class="mono">${m.KeyId}</dd>` : null}
      <dt>ARN</dt><dd class="mono">${param.ARN}</dd>
    </dl>
    <section aria-labelledby="param-value-h">
      <h2 id="param-value-h">Value</h2>
      ${!secure
        ? html`<pre class="output" aria-label="Value" data-value="plain">${param.Value}</pre>`
        : plain !== null
          ? html`<pre class="output" aria-label="Value" data-value="decrypted">${plain}</pre>
              <button type="button" class="secondary" onClick=${() => setPlain(null)}>Hide value</button>`
          : html`<p class="hidden-value" data-value="hidden">Hidden: a SecureString's value is shown only when you ask, decrypted with your key's permission.</p>
              <button type="button" onClick=${showValue} disabled=${decrypting}>${decrypting ? "Decrypting…" : "Show value"}</button>`}
      <${ErrorPanel} error=${decryptError} title="The value could not be decrypted" />
    </section>
    <section aria-labelledby="param-history-h">
      <h2 id="param-history-h">History</h2>
      <${ErrorPanel} error=${historyError} title="The history could not be read" />
      ${history === null && !historyError
        ? html`<${Loading} label="Loading the history…" />`
        : html`<${Table}
            caption=${`Versions of ${name}`}
            rows=${history || []}
            rowKey=${(h) => h.Version}
            columns=${[
              { label: "Version", key: "Version" },
              { label: "Last modified", render: (h) => formatDate(h.LastModifiedDate) },
              { label: "Modified by", render: (h) => html`<span class="mono">${h.LastModifiedUser || ""}</span>` },
              { label: "Labels", render: (h) => html`<${Labels} labels=${h.Labels} />` },
              { label: "Type", key: "Type" },
              { label: "Tier", key: "Tier" },
              {
                label: "Value",
                render: (h) =>
                  h.Type === "SecureString" && plain === null
                    ? html`<span class="muted">hidden</span>`
                    : html`<span class="mono history-value">${h.Value}</span>`,
              },
            ]}
          />`}
    </section>
    ${history && history.length
      ? html`<${LabelForm} name=${name} versions=${history.map((h) => h.Version)} onLabelled=${() => setReload(reload + 1)} />`
      : null}
    <${ConfirmDelete} name=${name} />`;
}

// --- put (create and edit) -----------------------------------------------------

export function PutParameterForm({ editing, initial }) {
  const [name, setName] = useState(initial.name || "");
  const [type, setType] = useState(initial.type || "String");
  const [value, setValue] = useState(initial.value || "");
  const [description, setDescription] = useState(initial.description || "");
  const [tier, setTier] = useState(initial.tier || "Standard");
  const [overwrite, setOverwrite] = useState(!!editing);
  const [problems, setProblems] = useState([]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    setError(null);
    const found = putProblems({ name: name.trim(), region: currentSession()?.region, type, value, tier, description });
    setProblems(found);
    if (found.length) return;
    setBusy(true);
    try {
      await send(
        new PutParameterCommand({
          Name: name.trim(),
          Type: type,
          Value: value,
          Description: description || undefined,
          Tier: tier,
          Overwrite: overwrite,
        }),
      );
      navigate("/parameters/view", { name: name.trim() });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  const invalid = problems.length > 0;
  return html`<form class="param-form" onSubmit=${submit} noValidate>
    <label for="param-name">Name</label>
    <input id="param-name" class="wide mono" value=${name} readOnly=${!!editing} aria-invalid=${invalid ? "true" : undefined}
      aria-describedby="param-name-help" onInput=${(e) => setName(e.currentTarget.value)} />
    <p id="param-name-help" class="help">Letters, digits and _ . - /; a path begins with "/", up to 15 levels; not beginning with "aws" or "ssm".</p>
    <label for="param-type">Type</label>
    <select id="param-type" value=${type} onChange=${(e) => setType(e.currentTarget.value)}>
      ${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
    </select>
    <label for="param-value">Value</label>
    <textarea id="param-value" rows="6" value=${value} aria-describedby="param-value-help"
      onInput=${(e) => setValue(e.currentTarget.value)}></textarea>
    <p id="param-value-help" class="help">${value.length} character${value.length === 1 ? "" : "s"}: up to 4096 in the Standard tier, 8192 in Advanced.${type === "StringList" ? " Separate the items with commas." : ""}${editing && initial.type === "SecureString" ? " The current value is not shown here: enter the new one." : ""}</p>
    <label for="param-description">Description</label>
    <input id="param-description" class="wide" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)} />
    <label for="param-tier">Tier</label>
    <select id="param-tier" value=${tier} onChange=${(e) => setTier(e.currentTarget.value)}>
      ${TIERS.map((t) => html`<option value=${t}>${t}</option>`)}
    </select>
    <div class="check">
      <input id="param-overwrite" type="checkbox" checked=${overwrite} onChange=${(e) => setOverwrite(e.currentTarget.checked)} />
      <label for="param-overwrite">Overwrite the current value (a new version)</label>
    </div>
    ${invalid
      ? html`<div class="error" role="alert" id="param-problems">
          <p><strong>Not sent: correct these first.</strong></p>
          <ul>${problems.map((p) => html`<li>${p}</li>`)}</ul>
        </div>`
      : null}
    <button type="submit" disabled=${busy}>${editing ? "Save new version" : "Create parameter"}</button>
    <${ErrorPanel} error=${error} title="The parameter was not saved" />
  </form>`;
}

export function NewParameterPage({ query }) {
  return html`<p><a href=${href("/parameters")}>← All parameters</a></p>
    <h1>Create parameter</h1>
    <${PutParameterForm} editing=${false} initial=${{ name: query.name || "" }} />`;
}

export function EditParameterPage({ query }) {
  const name = query.name || "";
  const [initial, setInitial] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    Promise.all([
      send(new GetParameterCommand({ Name: name })),
      send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Values: [name] }] })),
    ])
      .then(([got, described]) => {
        if (!live) return;
        const p = got.Parameter;
        const m = (described.Parameters || [])[0] || {};
        setInitial({
          name,
          type: p.Type,
          value: p.Type === "SecureString" ? "" : p.Value,
          description: m.Description || "",
          tier: m.Tier || "Standard",
        });
      })
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [name]);
  return html`<p><a href=${viewHref(name)}>← Back to the parameter</a></p>
    <h1>Edit <span class="mono">${name}</span></h1>
    ${error
      ? html`<${ErrorPanel} error=${error} title="The parameter could not be read" />`
      : initial
        ? html`<${PutParameterForm} editing=${true} initial=${initial} />`
        : html`<${Loading} label="Loading the parameter…" />`}`;
}

export const routes = [
  { path: "/parameters", title: "Parameters", nav: "Parameters", order: 40, component: ParametersPage },
  { path: "/parameters/view", title: "Parameter", order: 40.1, component: ParameterPage },
  { path: "/parameters/new", title: "Create parameter", order: 40.2, component: NewParameterPage },
  { path: "/parameters/edit", title: "Edit parameter", order: 40.3, component: EditParameterPage },
];
