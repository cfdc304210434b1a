// Sign-in: an access key and its secret, checked with one signed call before
// they are kept (in this tab's session storage only).
import { useState } from "preact/hooks";
import { DescribeInstanceInformationCommand } from "@aws-sdk/client-ssm";
import { html } from "../html.js";
import { ErrorPanel } from "../components/common.js";
import { saveSession, clearSession } from "../session.js";
import { send, forgetClient } from "../api.js";

// A key whose policy refuses this call may still sign in: it is known and
// its signature is right, and each page shows what it is refused.
const SIGNED_IN_CODES = new Set(["AccessDeniedException"]);

export function SignIn({ onSignedIn }) {
  const [accessKeyId, setKey] = useState("");
  const [secretAccessKey, setSecret] = useState("");
  const [region, setRegion] = useState("us-east-1");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const session = { accessKeyId: accessKeyId.trim(), secretAccessKey: secretAccessKey.trim(), region: region.trim() };
    saveSession(session);
    forgetClient();
    try {
      await send(new DescribeInstanceInformationCommand({ MaxResults: 5 }));
      onSignedIn(session);
    } catch (err) {
      if (SIGNED_IN_CODES.has(err.code)) {
        onSignedIn(session);
      } else {
        clearSession();
        forgetClient();
        setError(err);
      }
    } finally {
      setBusy(false);
    }
  }

  return html`<main class="signin" id="main">
    <h1>Steward console</h1>
    <p>Sign in with a Steward access key. It is kept in this browser tab only, and every request is signed with it.</p>
    <form onSubmit=${submit}>
      <label for="access-key-id">Access key ID</label>
      <input id="access-key-id" name="accessKeyId" autocomplete="username" required value=${accessKeyId}
        onInput=${(e) => setKey(e.currentTarget.value)} />
      <label for="secret-access-key">Secret access key</label>
      <input id="secret-access-key" name="secretAccessKey" type="password" autocomplete="current-password" required
        value=${secretAccessKey} onInput=${(e) => setSecret(e.currentTarget.value)} />
      <label for="region">Region</label>
      <input id="region" name="region" required value=${region} onInput=${(e) => setRegion(e.currentTarget.value)} />
      <button type="submit" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
    <${ErrorPanel} error=${error} title="Sign-in failed" />
  </main>`;
}
