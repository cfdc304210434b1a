// Parameter Store's hierarchy as a tree, and the checks SSM makes on a
// parameter's name and value before it is put: pure functions, no API.

// SSM: "The maximum length for a parameter name, including the full length
// of the parameter ARN, is 1011 characters."
export const MAX_ARN_LENGTH = 1011;
// Account ids are always 12 digits, so the ARN's length is known from the
// region alone, without a call to learn the account.
const ACCOUNT_ID_LENGTH = 12;
export const MAX_LEVELS = 15;
export const VALUE_LIMITS = { Standard: 4096, Advanced: 8192, "Intelligent-Tiering": 8192 };
export const MAX_DESCRIPTION_LENGTH = 1024;
export const TYPES = ["String", "StringList", "SecureString"];
export const TIERS = ["Standard", "Advanced", "Intelligent-Tiering"];

function folder(segment, path) {
  return { segment, path, folders: [], parameters: [], count: 0 };
}

// Names ("/app/db/url", "plain") into folders and parameters. Each folder is
// { segment, path ("/app/db"), folders, parameters, count (parameters under it) };
// each parameter is { segment, name, meta } where meta is what was given.
// Folders and parameters are sorted by segment.
export function buildTree(items, nameOf = (x) => (typeof x === "string" ? x : x.Name)) {
  const root = folder("", "");
  for (const item of items) {
    const name = nameOf(item);
    if (!name) continue;
    const parts = name.startsWith("/") ? name.slice(1).split("/") : [name];
    let node = root;
    node.count++;
    let path = "";
    for (const seg of parts.slice(0, -1)) {
      path += `/${seg}`;
      let next = node.folders.find((f) => f.segment === seg);
      if (!next) {
        next = folder(seg, path);
        node.folders.push(next);
      }
      next.count++;
      node = next;
    }
    node.parameters.push({ segment: parts[parts.length - 1], name, meta: item });
  }
  sortTree(root);
  return root;
}

function sortTree(node) {
  const by = (a, b) => (a.segment < b.segment ? -1 : a.segment > b.segment ? 1 : 0);
  node.folders.sort(by);
  node.parameters.sort(by);
  node.folders.forEach(sortTree);
}

// The items whose name contains `text` (case-insensitive); all when empty.
export function filterByName(items, text, nameOf = (x) => (typeof x === "string" ? x : x.Name)) {
  const q = (text || "").trim().toLowerCase();
  if (!q) return items;
  return items.filter((i) => (nameOf(i) || "").toLowerCase().includes(q));
}

// The folder paths leading to `name` ("/a/b/c" -> ["/a", "/a/b"]): the
// folders to open to show it.
export function ancestors(name) {
  if (!name || !name.startsWith("/")) return [];
  const parts = name.slice(1).split("/").slice(0, -1);
  const out = [];
  let path = "";
  for (const p of parts) {
    path += `/${p}`;
    out.push(path);
  }
  return out;
}

// The length of the ARN the API gives `name` in `region`, as it counts it:
// arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>.
export function arnLength(name, region) {
  return `arn:aws:ssm:${region || ""}:`.length + ACCOUNT_ID_LENGTH + ":parameter/".length + name.replace(/^\//, "").length;
}

// Every problem SSM would find with this name in `region`, as sentences;
// [] when valid.
export function nameProblems(name, region) {
  const problems = [];
  if (!name) return ["Enter a name."];
  const arn = arnLength(name, region);
  if (arn > MAX_ARN_LENGTH) {
    problems.push(
      `A name's ARN (arn:aws:ssm:${region}:<account>:parameter/ and the name) has at most ${MAX_ARN_LENGTH} characters; this one's would have ${arn}. Shorten the name by ${arn - MAX_ARN_LENGTH}.`,
    );
  }
  const bad = [...new Set(name.replace(/[a-zA-Z0-9_.\-/]/g, ""))];
  if (bad.length) {
    problems.push(`A name may use only letters, digits and _ . - / (not ${bad.map((c) => (c === " " ? "a space" : `"${c}"`)).join(", ")}).`);
  }
  if (name.includes("/")) {
    if (!name.startsWith("/")) problems.push('A name with a path must begin with "/".');
    if (name === "/" || name.endsWith("/")) problems.push('A name cannot end with "/".');
    if (name.includes("//")) problems.push('A name cannot have an empty level ("//").');
  }
  const first = (name.startsWith("/") ? name.slice(1) : name).split("/")[0].toLowerCase();
  if (first.startsWith("aws") || first.startsWith("ssm")) {
    problems.push('A name cannot begin with "aws" or "ssm" (in any case): those are reserved.');
  }
  const levels = name.startsWith("/") ? name.slice(1).split("/").length : name.split("/").length;
  if (levels > MAX_LEVELS) problems.push(`A name has at most ${MAX_LEVELS} levels (this one has ${levels}).`);
  return problems;
}

// Every problem SSM would find with a PutParameter's fields; [] when valid.
export function putProblems({ name, region, type, value, tier, description }) {
  const problems = [...nameProblems(name, region)];
  if (!TYPES.includes(type)) problems.push(`Pick a type: ${TYPES.join(", ")}.`);
  const t = tier || "Standard";
  if (!TIERS.includes(t)) problems.push(`Pick a tier: ${TIERS.join(", ")}.`);
  const limit = VALUE_LIMITS[t] || VALUE_LIMITS.Standard;
  if (!value) problems.push("Enter a value.");
  else if (value.length > limit) {
    problems.push(
      `A ${t} parameter's value has at most ${limit} characters (this one has ${value.length})${t === "Standard" ? "; the Advanced tier holds 8192" : ""}.`,
    );
  }
  if (description && description.length > MAX_DESCRIPTION_LENGTH) {
    problems.push(`A description has at most ${MAX_DESCRIPTION_LENGTH} characters.`);
  }
  return problems;
}
