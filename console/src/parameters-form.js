// A document's declared parameters as form fields, and the checking of the
// values a person gives before SendCommand is made. Pure logic: no DOM.
//
// DescribeDocument says each parameter's Name, Type, Description and
// DefaultValue; the document's content (GetDocument, DocumentFormat JSON)
// adds allowedValues, allowedPattern, minItems/maxItems, minChars/maxChars
// and displayType. On the wire every value is a list of strings: a String is
// one text, a StringList one text per item, an Integer "5", a Boolean "true",
// a StringMap one JSON object text, a MapList one JSON object text per item.
// A parameter without a default is required.

export const TYPES = ["String", "StringList", "Boolean", "Integer", "StringMap", "MapList"];

// The `parameters` object of a document's JSON content, or {} (no content,
// content that is not JSON, or a document without parameters).
export function contentParameters(content) {
  if (!content) return {};
  let doc = content;
  if (typeof content === "string") {
    try {
      doc = JSON.parse(content);
    } catch {
      return {};
    }
  }
  const p = doc && typeof doc === "object" ? doc.parameters : null;
  return p && typeof p === "object" && !Array.isArray(p) ? p : {};
}

function count(v) {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "string" && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function scalarText(v) {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

// A declared default as its wire values (a list of strings), from the
// content's typed `default` when there is one, else DescribeDocument's text.
function defaultWire(type, contentDefault, describedDefault) {
  const hasContent = contentDefault !== undefined;
  const v = hasContent ? contentDefault : describedDefault;
  if (v === undefined || v === null) return undefined;
  switch (type) {
    case "StringList": {
      if (Array.isArray(v)) return v.map((i) => scalarText(i) ?? JSON.stringify(i));
      if (!hasContent && typeof v === "string") {
        try {
          const parsed = JSON.parse(v);
          if (Array.isArray(parsed)) return parsed.map((i) => scalarText(i) ?? JSON.stringify(i));
        } catch {
          /* a single text stands for a one-item list */
        }
      }
      return [scalarText(v) ?? JSON.stringify(v)];
    }
    case "MapList": {
      let list = v;
      if (typeof v === "string") {
        try {
          list = JSON.parse(v);
        } catch {
          return [v];
        }
      }
      return Array.isArray(list) ? list.map((i) => (typeof i === "string" ? i : JSON.stringify(i))) : [JSON.stringify(list)];
    }
    case "StringMap":
      return [typeof v === "string" ? v : JSON.stringify(v)];
    default:
      return [scalarText(v) ?? JSON.stringify(v)];
  }
}

// The fields of a form for a document: `declared` is DescribeDocument's
// Document.Parameters, `content` its content's `parameters` (may be {}).
// Parameters only the content declares are included too.
export function buildFields(declared, content) {
  const c = content || {};
  const seen = new Set();
  const fields = [];
  const add = (name, described) => {
    if (seen.has(name)) return;
    seen.add(name);
    const decl = c[name] && typeof c[name] === "object" ? c[name] : {};
    const type = TYPES.includes(described?.Type) ? described.Type : TYPES.includes(decl.type) ? decl.type : "String";
    const allowedValues = Array.isArray(decl.allowedValues) ? decl.allowedValues.map((v) => scalarText(v) ?? JSON.stringify(v)) : [];
    const def = defaultWire(type, decl.default, described?.DefaultValue);
    const field = {
      name,
      type,
      description: described?.Description ?? (typeof decl.description === "string" ? decl.description : ""),
      required: def === undefined,
      default: def,
      allowedValues,
      allowedPattern: typeof decl.allowedPattern === "string" ? decl.allowedPattern : undefined,
      minItems: count(decl.minItems),
      maxItems: count(decl.maxItems),
      minChars: count(decl.minChars),
      maxChars: count(decl.maxChars),
      displayType: decl.displayType === "textarea" ? "textarea" : decl.displayType === "textfield" ? "textfield" : undefined,
    };
    field.control = controlFor(field);
    fields.push(field);
  };
  for (const p of declared || []) if (p && p.Name) add(p.Name, p);
  for (const name of Object.keys(c)) add(name, null);
  return fields;
}

// Which control a field is shown with.
export function controlFor(field) {
  if (field.type === "Boolean") return "checkbox";
  if (field.allowedValues.length > 0) return field.type === "StringList" ? "multiselect" : "select";
  switch (field.type) {
    case "Integer":
      return "number";
    case "StringList":
    case "StringMap":
    case "MapList":
      return "textarea";
    default:
      return field.displayType === "textarea" ? "textarea" : "text";
  }
}

// A field's value in the form (what its control holds) from wire values:
// text for text/number/select/textarea, a list for a multiselect, a boolean
// for a checkbox.
export function formValue(field, wire) {
  const w = wire || [];
  switch (field.control) {
    case "checkbox":
      return w[0] === "true";
    case "multiselect":
      return w.slice();
    default:
      if (field.type === "StringList" || field.type === "MapList") return w.join("\n");
      if (field.type === "StringMap" && w[0]) {
        try {
          return JSON.stringify(JSON.parse(w[0]), null, 2);
        } catch {
          return w[0];
        }
      }
      return w[0] ?? "";
  }
}

// The form's first values: `given` (name -> wire values, e.g. from a link)
// over each field's default.
export function initialValues(fields, given) {
  const values = {};
  for (const f of fields) values[f.name] = formValue(f, (given && given[f.name]) || f.default);
  return values;
}

// A textarea's items, one per line: line ends of any kind, without the
// empty lines before the first item and after the last.
export function splitLines(text) {
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  while (lines.length && lines[0].trim() === "") lines.shift();
  while (lines.length && lines[lines.length - 1].trim() === "") lines.pop();
  return lines;
}

// A Parameter Store reference ({{ssm:/a/b}}) stands for a value the
// service resolves later: its text is not checked against the constraints.
function isReference(text) {
  return /\{\{\s*ssm(-secure)?:[^{}]+\}\}/.test(text);
}

function compile(pattern) {
  try {
    // The whole value must match (as the service checks it).
    return new RegExp(`^(?:${pattern})$`, "u");
  } catch {
    try {
      return new RegExp(`^(?:${pattern})$`);
    } catch {
      return null; // a pattern JavaScript cannot read: the service checks it
    }
  }
}

function sameWire(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// One field's value checked: { error } with a message for the person, or
// { wire } (the values to send) or { omit: true } (the document's default
// applies, so nothing is sent for it).
export function checkField(field, value) {
  const t = field.type;
  let wire;
  let empty = false;
  switch (t) {
    case "Boolean":
      wire = [value === true || value === "true" ? "true" : "false"];
      break;
    case "StringList":
      wire = Array.isArray(value) ? value.slice() : splitLines(value);
      empty = wire.length === 0;
      break;
    case "MapList": {
      const text = String(value ?? "").trim();
      empty = text === "";
      if (empty) {
        wire = [];
        break;
      }
      let items;
      if (text.startsWith("[")) {
        try {
          items = JSON.parse(text);
        } catch {
          return { error: "Give a JSON list of objects, or one JSON object per line." };
        }
        if (!Array.isArray(items)) return { error: "Give a JSON list of objects, or one JSON object per line." };
      } else {
        items = [];
        for (const line of splitLines(text)) {
          if (line.trim() === "") continue;
          try {
            items.push(JSON.parse(line));
          } catch {
            return { error: `Line "${line}" is not a JSON object; give one JSON object per line, e.g. {"key":"value"}.` };
          }
        }
      }
      if (!items.every(isObject)) return { error: 'Each item must be a JSON object, e.g. {"key":"value"}.' };
      wire = items.map((i) => JSON.stringify(i));
      break;
    }
    case "StringMap": {
      const text = String(value ?? "").trim();
      empty = text === "";
      if (empty) {
        wire = [];
        break;
      }
      let obj;
      try {
        obj = JSON.parse(text);
      } catch {
        return { error: 'Give a JSON object, e.g. {"key":"value"}.' };
      }
      if (!isObject(obj)) return { error: 'Give a JSON object, e.g. {"key":"value"}.' };
      wire = [JSON.stringify(obj)];
      break;
    }
    case "Integer": {
      const text = String(value ?? "").trim();
      empty = text === "";
      wire = [text];
      if (!empty && !/^-?\d+$/.test(text)) return { error: `"${text}" is not a whole number; give a number such as 42.` };
      if (!empty && !Number.isSafeInteger(Number(text))) return { error: `${text} is too large a number.` };
      break;
    }
    default: {
      const text = String(value ?? "");
      empty = text === "";
      wire = [text];
    }
  }

  if (empty) {
    if (field.required) {
      if (field.control === "select") return { error: `Required: choose one of ${field.allowedValues.join(", ")}.` };
      if (t === "StringList" || t === "MapList") return { error: "Required: give at least one item, one per line." };
      return { error: "Required: this parameter has no default, give a value." };
    }
    // An optional field left empty takes the document's default.
    return { omit: true };
  }

  // The texts the constraints apply to: each item of a list, the JSON of a map.
  const list = t === "StringList" || t === "MapList";
  if (list) {
    const n = wire.length;
    if (field.minItems !== undefined && n < field.minItems) {
      return { error: `${n} ${n === 1 ? "item was" : "items were"} given; it takes at least ${field.minItems}.` };
    }
    if (field.maxItems !== undefined && n > field.maxItems) {
      return { error: `${n} items were given; it takes at most ${field.maxItems}.` };
    }
  }
  const pattern = field.allowedPattern !== undefined ? compile(field.allowedPattern) : null;
  for (const text of wire) {
    if (isReference(text)) continue;
    const chars = [...text].length;
    const which = list && wire.length > 1 ? `Item "${text}": ` : "";
    if (field.minChars !== undefined && chars < field.minChars) {
      return { error: `${which}${chars} characters is shorter than the ${field.minChars} it takes at least.` };
    }
    if (field.maxChars !== undefined && chars > field.maxChars) {
      return { error: `${which}${chars} characters is longer than the ${field.maxChars} it takes at most.` };
    }
    if (field.allowedValues.length > 0 && !field.allowedValues.includes(text)) {
      return { error: `"${text}" is not an allowed value; use one of ${field.allowedValues.join(", ")}.` };
    }
    if (pattern && !pattern.test(text)) {
      return { error: `"${text}" does not match the allowed pattern ${field.allowedPattern}.` };
    }
  }
  if (!field.required && sameWire(wire, field.default)) return { omit: true };
  return { wire };
}

// Every field checked: { errors: name -> message, parameters: name -> wire
// values for SendCommand's Parameters, ok }.
export function checkForm(fields, values) {
  const errors = {};
  const parameters = {};
  for (const f of fields) {
    const r = checkField(f, values ? values[f.name] : undefined);
    if (r.error) errors[f.name] = r.error;
    else if (r.wire) parameters[f.name] = r.wire;
  }
  return { errors, parameters, ok: Object.keys(errors).length === 0 };
}

// SendCommand's own settings, checked as the API would.
export function checkMaxConcurrency(value) {
  const v = String(value ?? "").trim();
  if (v === "") return "Give a number of nodes (e.g. 50) or a percentage (e.g. 10%).";
  if (!/^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$/.test(v)) {
    return `"${v}" is not a number of nodes of 1 or more, nor a percentage from 1% to 100%.`;
  }
  return null;
}

export function checkMaxErrors(value) {
  const v = String(value ?? "").trim();
  if (v === "") return "Give a number of errors (e.g. 0) or a percentage (e.g. 10%).";
  if (!/^([1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%)$/.test(v)) {
    return `"${v}" is not a number of errors of 0 or more, nor a percentage from 0% to 100%.`;
  }
  return null;
}

export function checkTimeoutSeconds(value) {
  const v = String(value ?? "").trim();
  if (v === "") return null; // the API's default
  if (!/^\d+$/.test(v)) return `"${v}" is not a whole number of seconds.`;
  const n = Number(v);
  if (n < 30 || n > 2592000) return "Give between 30 and 2592000 seconds (30 days).";
  return null;
}

// Node ids typed one per line (or separated by commas or spaces).
export function parseNodeIds(text) {
  return [...new Set(String(text ?? "").split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
}
