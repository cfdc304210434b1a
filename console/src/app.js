// The console's frame: sign-in, the navigation bar, and the page the hash names.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { useRoute, match, href, navigate } from "./router.js";
import { routes, HOME } from "./routes.js";
import { currentSession, clearSession } from "./session.js";
import { forgetClient } from "./api.js";
import { SignIn } from "./pages/signin.js";

function Nav({ path, session, onSignOut }) {
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>Skip to content</a>
    <span class="brand">Steward</span>
    <nav aria-label="Main">
      <ul>
        ${routes.filter((r) => r.nav).map((r) => html`<li>
          <a href=${href(r.path)} aria-current=${path.startsWith(r.path) ? "page" : undefined}>${r.nav}</a>
        </li>`)}
      </ul>
    </nav>
    <span class="who">${session.accessKeyId}</span>
    <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>
  </header>`;
}

export function App() {
  const [session, setSession] = useState(currentSession());
  const { path, query } = useRoute();

  if (!session) return html`<${SignIn} onSignedIn=${(s) => { setSession(s); if (path === "/") navigate(HOME); }} />`;

  const signOut = () => {
    clearSession();
    forgetClient();
    setSession(null);
  };
  let page = null;
  for (const r of routes) {
    const params = match(r.path, path);
    if (params) {
      document.title = `${r.title} · Steward`;
      page = html`<${r.component} params=${params} query=${query} />`;
      break;
    }
  }
  if (!page) {
    if (path === "/") {
      navigate(HOME);
      return null;
    }
    page = html`<h1>Not found</h1><p>No page at <code>${path}</code>. <a href=${href(HOME)}>Go to the fleet</a>.</p>`;
  }
  return html`<${Nav} path=${path} session=${session} onSignOut=${signOut} />
    <main id="main" tabindex="-1">${page}</main>`;
}
