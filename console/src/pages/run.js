// Run a command: pick a Command document and its version, fill the form its
// declared parameters make, choose the nodes (by id or by tags, with how many
// match), rate control and timeouts, and send (SendCommand). Values are
// checked here before anything is sent; what the API refuses is shown as it
// said it.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  DescribeDocumentCommand,
  DescribeInstanceInformationCommand,
  GetDocumentCommand,
  ListDocumentsCommand,
  ListDocumentVersionsCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { allPages, send } from "../api.js";
import { ErrorPanel, Loading } from "../components/common.js";
import { navigate } from "../router.js";
import {
  buildFields,
  checkField,
  checkForm,
  checkMaxConcurrency,
  checkMaxErrors,
  checkTimeoutSeconds,
  contentParameters,
  initialValues,
  parseNodeIds,
} from "../parameters-form.js";
import "./run.css";

// Shown with the rate control and timeouts rather than with the other parameters.
const EXECUTION_TIMEOUT = "executionTimeout";
// A value a number input cannot hold (letters typed into it): refused as not a whole number.
const NOT_A_NUMBER = "not a number";

function typeHint(field) {
  switch (field.type) {
    case "StringList":
      return field.control === "multiselect" ? "StringList: choose one or more." : "StringList: one item per line.";
    case "MapList":
      return "MapList: one JSON object per line.";
    case "StringMap":
      return 'StringMap: a JSON object, e.g. {"key":"value"}.';
    case "Integer":
      return "Integer: a whole number.";
    case "Boolean":
      return "Boolean.";
    default:
      return "String.";
  }
}

function constraintsHint(field) {
  const parts = [];
  if (field.allowedPattern !== undefined && field.control !== "select") parts.push(`Pattern: ${field.allowedPattern}`);
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  if (field.minItems !== undefined) parts.push(`At least ${plural(field.minItems, "item", "items")}`);
  if (field.maxItems !== undefined) parts.push(`At most ${plural(field.maxItems, "item", "items")}`);
  if (field.minChars !== undefined) parts.push(`At least ${plural(field.minChars, "character", "characters")}`);
  if (field.maxChars !== undefined) parts.push(`At most ${plural(field.maxChars, "character", "characters")}`);
  if (!field.required && field.default && field.control !== "checkbox") {
    const d = field.default.join(field.type === "StringList" ? ", " : "");
    parts.push(d === "" ? "Default: empty" : `Default: ${d}`);
  }
  return parts.join(". ");
}

// One declared parameter as a labelled control, with its description, its
// constraints and (after a check) what is wrong with its value.
function ParameterField({ field, value, error, onChange, label }) {
  const id = `param-${field.name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = error ? `${hintId} ${errorId}` : hintId;
  const common = {
    id,
    name: field.name,
    "aria-describedby": describedBy,
    "aria-invalid": error ? "true" : undefined,
    "aria-required": field.required ? "true" : undefined,
  };
  const text = (e) => onChange(e.currentTarget.value);
  let control;
  switch (field.control) {
    case "checkbox":
      control = html`<input type="checkbox" ...${common} checked=${value === true} onChange=${(e) => onChange(e.currentTarget.checked)} />`;
      break;
    case "select":
      control = html`<select ...${common} value=${value} onChange=${text}>
        ${field.required || !field.allowedValues.includes(value) ? html`<option value="">Choose a value…</option>` : null}
        ${field.allowedValues.map((v) => html`<option value=${v}>${v}</option>`)}
      </select>`;
      break;
    case "multiselect":
      control = html`<select multiple ...${common} size=${Math.min(6, field.allowedValues.length)}
        onChange=${(e) => onChange([...e.currentTarget.selectedOptions].map((o) => o.value))}>
        ${field.allowedValues.map((v) => html`<option value=${v} selected=${(value || []).includes(v)}>${v}</option>`)}
      </select>`;
      break;
    case "number":
      control = html`<input type="number" step="1" inputmode="numeric" ...${common} value=${value === NOT_A_NUMBER ? undefined : value}
        onInput=${(e) => onChange(e.currentTarget.validity.badInput ? NOT_A_NUMBER : e.currentTarget.value)} />`;
      break;
    case "textarea":
      control = html`<textarea ...${common} rows=${field.type === "StringMap" ? 4 : 5} spellcheck="false" value=${value} onInput=${text}></textarea>`;
      break;
    default:
      control = html`<input type="text" ...${common} spellcheck="false" value=${value} onInput=${text} />`;
  }
  const labelText = html`${label || field.name}${field.required ? html` <span class="required">(required)</span>` : null}`;
  const constraints = constraintsHint(field);
  return html`<div class=${`param param-${field.control}${error ? " invalid" : ""}`}>
    ${field.control === "checkbox"
      ? html`<div class="check">${control}<label for=${id}>${labelText}</label></div>`
      : html`<label for=${id}>${labelText}</label>${control}`}
    <p class="hint" id=${hintId}>
      ${label ? html`Document parameter <code>${field.name}</code>. ` : null}${typeHint(field)}
      ${field.description ? ` ${field.description}` : ""}${constraints ? html` <span class="constraints">${/[.!?]$/.test(field.description || "") || !field.description ? "" : ". "}${constraints}.</span>` : null}
    </p>
    ${error ? html`<p class="field-error" id=${errorId}>${error}</p>` : null}
  </div>`;
}

// A plain labelled text input for SendCommand's own settings.
function SettingField({ id, label, hint, value, onInput, error, inputmode }) {
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  return html`<div class=${`param${error ? " invalid" : ""}`}>
    <label for=${id}>${label}</label>
    <input id=${id} type="text" inputmode=${inputmode} value=${value} onInput=${(e) => onInput(e.currentTarget.value)}
      aria-describedby=${error ? `${hintId} ${errorId}` : hintId} aria-invalid=${error ? "true" : undefined} />
    <p class="hint" id=${hintId}>${hint}</p>
    ${error ? html`<p class="field-error" id=${errorId}>${error}</p>` : null}
  </div>`;
}

// The nodes the targets name, as DescribeInstanceInformation filters.
function tagFilters(tags) {
  const byKey = new Map();
  for (const t of tags) {
    const key = t.key.trim();
    const value = t.value.trim();
    if (!key || !value) continue;
    if (!byKey.has(key)) byKey.set(key, []);
    if (!byKey.get(key).includes(value)) byKey.get(key).push(value);
  }
  return [...byKey.entries()].map(([key, values]) => ({ Key: `tag:${key}`, Values: values }));
}

function countText(n) {
  if (n === 0) return "No node matches";
  return n === 1 ? "1 node matches" : `${n} nodes match`;
}

// How many registered nodes the targets name, counting every page.
function useMatchCount(mode, ids, filters) {
  const [state, setState] = useState({ status: "idle" });
  const key = mode === "ids" ? `ids:${ids.join(",")}` : `tags:${JSON.stringify(filters)}`;
  useEffect(() => {
    let live = true;
    if ((mode === "ids" && ids.length === 0) || (mode === "tags" && filters.length === 0)) {
      setState({ status: "empty" });
      return undefined;
    }
    setState({ status: "counting", sofar: 0 });
    const timer = setTimeout(async () => {
      try {
        const found = [];
        const chunks = [];
        if (mode === "ids") for (let i = 0; i < ids.length; i += 50) chunks.push([{ Key: "InstanceIds", Values: ids.slice(i, i + 50) }]);
        else chunks.push(filters);
        for (const f of chunks) {
          const nodes = await allPages(
            (token) => new DescribeInstanceInformationCommand({ MaxResults: 50, NextToken: token, Filters: f }),
            (out) => out.InstanceInformationList,
            (sofar) => live && setState({ status: "counting", sofar: found.length + sofar.length }),
          );
          found.push(...nodes);
          if (!live) return;
        }
        const known = new Set(found.map((n) => n.InstanceId));
        if (live) {
          setState({
            status: "done",
            count: known.size,
            online: found.filter((n) => n.PingStatus === "Online").length,
            unknown: mode === "ids" ? ids.filter((i) => !known.has(i)) : [],
          });
        }
      } catch (e) {
        if (live) setState({ status: "error", error: e });
      }
    }, 400);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [key]);
  return state;
}

function MatchCount({ state }) {
  let text;
  if (state.status === "empty") text = "Name at least one node to see how many match.";
  else if (state.status === "counting") text = `Counting matching nodes… ${state.sofar || 0} so far`;
  else if (state.status === "done") {
    text = `${countText(state.count)}${state.count ? ` (${state.online} online)` : ""}.`;
    if (state.unknown.length) text += ` Not registered: ${state.unknown.join(", ")}.`;
  } else text = "";
  return html`<p id="run-match" class="match" role="status" aria-live="polite">${text}</p>
    ${state.status === "error" ? html`<${ErrorPanel} error=${state.error} title="The matching nodes could not be counted" />` : null}`;
}

export function RunPage({ query }) {
  const [documents, setDocuments] = useState(null);
  const [docsLoaded, setDocsLoaded] = useState(0);
  const [docsError, setDocsError] = useState(null);
  const [docSearch, setDocSearch] = useState("");
  const [docName, setDocName] = useState(query.document || "");
  const [versions, setVersions] = useState([]);
  const [version, setVersion] = useState("$DEFAULT");
  const [versionsError, setVersionsError] = useState(null);
  const [docInfo, setDocInfo] = useState(null); // { name, version, document, fields }
  const [docError, setDocError] = useState(null);
  const [values, setValues] = useState({});
  const [checked, setChecked] = useState(false);
  const [mode, setMode] = useState("ids");
  const [idsText, setIdsText] = useState(query.target || "");
  const [tags, setTags] = useState([{ key: "", value: "" }]);
  const [maxConcurrency, setMaxConcurrency] = useState("50");
  const [maxErrors, setMaxErrors] = useState("0");
  const [timeoutSeconds, setTimeoutSeconds] = useState("3600");
  const [comment, setComment] = useState("");
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState(null);
  const [refused, setRefused] = useState(0);
  const formRef = useRef(null);

  // A link from another page (a node's "Run command on this node").
  useEffect(() => {
    if (query.target) {
      setIdsText(query.target);
      setMode("ids");
    }
  }, [query.target]);
  useEffect(() => {
    if (query.document) setDocName(query.document);
  }, [query.document]);

  useEffect(() => {
    let live = true;
    allPages(
      (token) =>
        new ListDocumentsCommand({ MaxResults: 50, NextToken: token, Filters: [{ Key: "DocumentType", Values: ["Command"] }] }),
      (out) => out.DocumentIdentifiers,
      (sofar) => live && setDocsLoaded(sofar.length),
    )
      .then((all) => live && setDocuments(all.sort((a, b) => a.Name.localeCompare(b.Name))))
      .catch((e) => live && setDocsError(e));
    return () => {
      live = false;
    };
  }, []);

  // The chosen document's versions.
  useEffect(() => {
    let live = true;
    setVersions([]);
    setVersion("$DEFAULT");
    setVersionsError(null);
    if (!docName) return undefined;
    allPages(
      (token) => new ListDocumentVersionsCommand({ Name: docName, MaxResults: 50, NextToken: token }),
      (out) => out.DocumentVersions,
    )
      .then((all) => live && setVersions(all))
      .catch((e) => live && setVersionsError(e));
    return () => {
      live = false;
    };
  }, [docName]);

  // Its declared parameters (DescribeDocument) and their constraints (the content).
  useEffect(() => {
    let live = true;
    setDocInfo(null);
    setDocError(null);
    setChecked(false);
    if (!docName) return undefined;
    const v = version === "$DEFAULT" ? undefined : version;
    Promise.all([
      send(new DescribeDocumentCommand({ Name: docName, DocumentVersion: v })),
      send(new GetDocumentCommand({ Name: docName, DocumentVersion: v, DocumentFormat: "JSON" })),
    ])
      .then(([d, g]) => {
        if (!live) return;
        const fields = buildFields(d.Document?.Parameters || [], contentParameters(g.Content));
        setDocInfo({ name: docName, version: g.DocumentVersion || d.Document?.DocumentVersion, document: d.Document, fields });
        setValues(initialValues(fields));
      })
      .catch((e) => live && setDocError(e));
    return () => {
      live = false;
    };
  }, [docName, version]);

  const ids = useMemo(() => parseNodeIds(idsText), [idsText]);
  const filters = useMemo(() => tagFilters(tags), [tags]);
  const match = useMatchCount(mode, ids, filters);

  const fields = docInfo ? docInfo.fields : [];
  const paramCheck = useMemo(() => checkForm(fields, values), [fields, values]);
  const settingErrors = {
    maxConcurrency: checkMaxConcurrency(maxConcurrency),
    maxErrors: checkMaxErrors(maxErrors),
    timeoutSeconds: checkTimeoutSeconds(timeoutSeconds),
    comment: comment.length > 100 ? `${comment.length} characters; a comment takes at most 100.` : null,
    targets:
      mode === "ids"
        ? ids.length === 0
          ? "Give at least one node id."
          : null
        : filters.length === 0
          ? "Give a tag key and its value."
          : null,
  };
  const shownError = (name) => {
    if (!checked || !paramCheck.errors[name]) return undefined;
    // What a number input could not read (letters typed into it).
    if (values[name] === NOT_A_NUMBER) return "What was typed is not a number; give a whole number such as 42.";
    return paramCheck.errors[name];
  };
  const shownSetting = (name) => (checked ? settingErrors[name] : null);

  const visibleDocs = useMemo(() => {
    const q = docSearch.trim().toLowerCase();
    const list = (documents || []).filter((d) => !q || d.Name.toLowerCase().includes(q) || d.Name === docName);
    if (docName && !list.some((d) => d.Name === docName)) list.unshift({ Name: docName });
    return list;
  }, [documents, docSearch, docName]);

  async function submit(e) {
    e.preventDefault();
    setChecked(true);
    setSendError(null);
    const problems = !docInfo || !paramCheck.ok || Object.values(settingErrors).some(Boolean);
    if (problems) {
      setRefused((n) => n + 1);
      // The first field that needs a correction gets the focus.
      setTimeout(() => formRef.current?.querySelector("[aria-invalid=true]")?.focus(), 0);
      return;
    }
    const input = {
      DocumentName: docInfo.name,
      DocumentVersion: version,
      Parameters: paramCheck.parameters,
      MaxConcurrency: maxConcurrency.trim(),
      MaxErrors: maxErrors.trim(),
      Comment: comment.trim() || undefined,
    };
    if (timeoutSeconds.trim()) input.TimeoutSeconds = Number(timeoutSeconds.trim());
    if (mode === "ids") input.InstanceIds = ids;
    else input.Targets = filters;
    setSending(true);
    try {
      const out = await send(new SendCommandCommand(input));
      navigate(`/commands/${out.Command.CommandId}`);
    } catch (err) {
      setSendError(err);
      setSending(false);
    }
  }

  const timeoutField = fields.find((f) => f.name === EXECUTION_TIMEOUT);
  const invalidCount = checked ? Object.keys(paramCheck.errors).length + Object.values(settingErrors).filter(Boolean).length : 0;
  const setValue = (name) => (v) => setValues((old) => ({ ...old, [name]: v }));

  return html`<h1>Run command</h1>
    <${ErrorPanel} error=${docsError} title="The documents could not be listed" />
    <form class="run" ref=${formRef} noValidate onSubmit=${submit} aria-label="Run command">
      <fieldset>
        <legend>Document</legend>
        <div class="row">
          <div>
            <label for="run-doc-search">Search documents</label>
            <input id="run-doc-search" type="search" value=${docSearch} placeholder="name"
              onInput=${(e) => setDocSearch(e.currentTarget.value)} aria-describedby="run-doc-count" />
          </div>
          <div>
            <label for="run-document">Document</label>
            <select id="run-document" value=${docName} onChange=${(e) => setDocName(e.currentTarget.value)}
              aria-describedby="run-doc-count">
              <option value="">Choose a Command document…</option>
              ${visibleDocs.map((d) => html`<option value=${d.Name}>${d.Name}</option>`)}
            </select>
          </div>
          <div>
            <label for="run-version">Document version</label>
            <select id="run-version" value=${version} disabled=${!docName} onChange=${(e) => setVersion(e.currentTarget.value)}>
              <option value="$DEFAULT">Default version ($DEFAULT)</option>
              <option value="$LATEST">Latest version ($LATEST)</option>
              ${versions.map(
                (v) => html`<option value=${v.DocumentVersion}>
                  Version ${v.DocumentVersion}${v.VersionName ? ` (${v.VersionName})` : ""}${v.IsDefaultVersion ? " · default" : ""}
                </option>`,
              )}
            </select>
          </div>
        </div>
        <p id="run-doc-count" class="hint" role="status" aria-live="polite">
          ${documents === null
            ? `Loading Command documents… ${docsLoaded} so far`
            : `${visibleDocs.length} of ${documents.length} Command documents shown.`}
        </p>
        <${ErrorPanel} error=${versionsError} title="The document's versions could not be listed" />
        ${docInfo?.document?.Description ? html`<p class="doc-description">${docInfo.document.Description}</p>` : null}
      </fieldset>

      ${docName
        ? html`<fieldset>
            <legend>Parameters</legend>
            <${ErrorPanel} error=${docError} title="The document could not be read" />
            ${!docInfo && !docError ? html`<${Loading} label="Reading the document's parameters…" />` : null}
            ${docInfo && fields.filter((f) => f.name !== EXECUTION_TIMEOUT).length === 0
              ? html`<p class="hint">This document declares no parameters.</p>`
              : null}
            ${fields
              .filter((f) => f.name !== EXECUTION_TIMEOUT)
              .map(
                (f) => html`<${ParameterField} key=${`${docInfo.name}:${f.name}`} field=${f} value=${values[f.name]}
                  error=${shownError(f.name)} onChange=${setValue(f.name)} />`,
              )}
          </fieldset>`
        : null}

      <fieldset>
        <legend>Targets</legend>
        <fieldset class="choice">
          <legend>Choose nodes by</legend>
          <span><input type="radio" id="run-by-ids" name="run-target-mode" checked=${mode === "ids"} onChange=${() => setMode("ids")} />
            <label for="run-by-ids">Node IDs</label></span>
          <span><input type="radio" id="run-by-tags" name="run-target-mode" checked=${mode === "tags"} onChange=${() => setMode("tags")} />
            <label for="run-by-tags">Tags</label></span>
        </fieldset>
        ${mode === "ids"
          ? html`<div class=${`param${shownSetting("targets") ? " invalid" : ""}`}>
              <label for="run-node-ids">Node IDs (one per line)</label>
              <textarea id="run-node-ids" rows="3" spellcheck="false" value=${idsText} placeholder="mi-0123456789abcdef0"
                onInput=${(e) => setIdsText(e.currentTarget.value)}
                aria-describedby=${shownSetting("targets") ? "run-match run-targets-error" : "run-match"}
                aria-invalid=${shownSetting("targets") ? "true" : undefined}></textarea>
            </div>`
          : html`<div class="tags">
              ${tags.map(
                (t, i) => html`<div class="row tag-row">
                  <div>
                    <label for=${`run-tag-key-${i}`}>Tag ${i + 1} key</label>
                    <input id=${`run-tag-key-${i}`} value=${t.key} placeholder="env" spellcheck="false"
                      aria-invalid=${shownSetting("targets") ? "true" : undefined}
                      aria-describedby=${shownSetting("targets") ? "run-match run-targets-error" : "run-match"}
                      onInput=${(e) => {
                        const key = e.currentTarget.value;
                        setTags((old) => old.map((o, j) => (j === i ? { ...o, key } : o)));
                      }} />
                  </div>
                  <div>
                    <label for=${`run-tag-value-${i}`}>Tag ${i + 1} value</label>
                    <input id=${`run-tag-value-${i}`} value=${t.value} placeholder="dev" spellcheck="false"
                      aria-describedby="run-match"
                      onInput=${(e) => {
                        const value = e.currentTarget.value;
                        setTags((old) => old.map((o, j) => (j === i ? { ...o, value } : o)));
                      }} />
                  </div>
                  ${tags.length > 1
                    ? html`<button type="button" class="secondary" onClick=${() => setTags((old) => old.filter((_, j) => j !== i))}>
                        Remove tag ${i + 1}
                      </button>`
                    : null}
                </div>`,
              )}
              <button type="button" class="secondary" onClick=${() => setTags((old) => [...old, { key: "", value: "" }])}>Add a tag</button>
              <p class="hint">A node matches when it has every tag given (for the same key, any of its values).</p>
            </div>`}
        ${shownSetting("targets") ? html`<p class="field-error" id="run-targets-error">${settingErrors.targets}</p>` : null}
        <${MatchCount} state=${match} />
      </fieldset>

      <fieldset>
        <legend>Rate control and timeouts</legend>
        <div class="row">
          <${SettingField} id="run-max-concurrency" label="Concurrency (MaxConcurrency)" value=${maxConcurrency}
            onInput=${setMaxConcurrency} error=${shownSetting("maxConcurrency")}
            hint="How many nodes run it at once: a number, or a percentage of the targets (10%)." />
          <${SettingField} id="run-max-errors" label="Error threshold (MaxErrors)" value=${maxErrors}
            onInput=${setMaxErrors} error=${shownSetting("maxErrors")}
            hint="Stop sending to more nodes after this many errors: a number, or a percentage." />
          <${SettingField} id="run-timeout" label="Delivery timeout (seconds)" value=${timeoutSeconds} inputmode="numeric"
            onInput=${setTimeoutSeconds} error=${shownSetting("timeoutSeconds")}
            hint="How long a node has to start the command (TimeoutSeconds), 30 to 2592000." />
          ${timeoutField
            ? html`<${ParameterField} field=${timeoutField} value=${values[EXECUTION_TIMEOUT]} label="Execution timeout (seconds)"
                error=${shownError(EXECUTION_TIMEOUT)} onChange=${setValue(EXECUTION_TIMEOUT)} />`
            : null}
        </div>
      </fieldset>

      <fieldset>
        <legend>Send</legend>
        <${SettingField} id="run-comment" label="Comment" value=${comment} onInput=${setComment} error=${shownSetting("comment")}
          hint="Optional, up to 100 characters; shown in the command history." />
        ${invalidCount > 0
          ? html`<p class="field-error summary" role="status" key=${refused}>
              Not sent: ${invalidCount === 1 ? "1 field needs" : `${invalidCount} fields need`} a correction (see the messages by the fields).
            </p>`
          : null}
        <${ErrorPanel} error=${sendError} title="The command was not sent" />
        <button type="submit" disabled=${sending || !docInfo || docInfo.name !== docName}>${sending ? "Sending…" : "Send"}</button>
      </fieldset>
    </form>`;
}

export const routes = [{ path: "/run", title: "Run command", nav: "Run command", order: 20, component: RunPage }];
