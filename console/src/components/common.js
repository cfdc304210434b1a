// Small shared pieces: the error panel, loading and empty states, a table.
import { html } from "../html.js";

// An API error as the API gave it, with what to do next. Never a blank page.
export function ErrorPanel({ error, title }) {
  if (!error) return null;
  return html`<div class="error" role="alert">
    <p><strong>${title || "The request was refused"}:</strong> <code>${error.code || "Error"}</code></p>
    <p class="error-message">${error.message}</p>
    <p class="error-next">${error.next || ""}</p>
  </div>`;
}

export function Loading({ label }) {
  return html`<p class="loading" role="status" aria-live="polite">${label || "Loading…"}</p>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

// A plain accessible table: `columns` are { key, label, render? }.
export function Table({ caption, columns, rows, rowKey, empty }) {
  if (!rows || rows.length === 0) return html`<${Empty}>${empty || "Nothing to show."}<//>`;
  return html`<table>
    ${caption ? html`<caption>${caption}</caption>` : null}
    <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
    <tbody>
      ${rows.map(
        (r) => html`<tr key=${rowKey ? rowKey(r) : undefined}>
          ${columns.map((c) => html`<td>${c.render ? c.render(r) : r[c.key] ?? ""}</td>`)}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function formatDate(value) {
  if (!value) return "";
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
