// Every call is an ordinary SigV4-signed SSM API call, made and signed by the
// AWS SDK for JavaScript's SSM client, to the origin that served the console
// (the api function). The console can do nothing the key's policy forbids.
import { SSMClient } from "@aws-sdk/client-ssm";
import { currentSession } from "./session.js";
import { asApiError } from "./errors.js";

let cached = null;

function client() {
  const session = currentSession();
  if (!session) throw asApiError({ name: "UnrecognizedClientException", message: "Not signed in." });
  if (cached && cached.key === session.accessKeyId && cached.region === session.region) return cached.client;
  const c = new SSMClient({
    region: session.region,
    endpoint: window.location.origin,
    credentials: { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey },
    maxAttempts: 3,
  });
  cached = { key: session.accessKeyId, region: session.region, client: c };
  return c;
}

export function forgetClient() {
  cached = null;
}

// Sends one command (an SDK Command instance); errors become ApiErrors.
export async function send(command) {
  try {
    return await client().send(command);
  } catch (e) {
    throw asApiError(e);
  }
}

// Every page of a paged call: `make(token)` builds the command for a page,
// `items(out)` takes its items. `onPage(itemsSoFar)` sees progress.
export async function allPages(make, items, onPage) {
  const all = [];
  let token;
  do {
    const out = await send(make(token));
    all.push(...(items(out) || []));
    if (onPage) onPage(all.slice());
    token = out.NextToken;
  } while (token);
  return all;
}
