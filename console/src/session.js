// The signed-in key: kept only in this tab's session storage (gone when the
// tab closes), never in local storage or a cookie.
const KEY = "steward.session";

export function currentSession() {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    return s && s.accessKeyId && s.secretAccessKey && s.region ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}
