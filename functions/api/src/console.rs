//! The web console's files, served by the api function under `/console/`:
//! the same origin as the API, so the browser's SigV4-signed calls need no
//! CORS, and the console a deployment serves is always the one built with
//! its API. The console is a plain client: it holds no key of its own.

use bytes::Bytes;

pub struct Asset {
    pub path: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

pub const PREFIX: &str = "/console/";

// The console loads only its own files and talks only to its own origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Steward console</title></head>\
<body><h1>The console is not in this build</h1><p>This api function was built without the web console. \
Build it with <code>bash infra/console.sh build</code> (npm ci and npm run build in console/), \
then build the api function again (<code>sam build</code>, <code>cargo lambda build</code> or <code>make up</code>).</p></body></html>";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn respond(
    req: &http::Request<Bytes>,
    status: u16,
    content_type: &str,
    cache: &str,
    body: Bytes,
) -> http::Response<Bytes> {
    let body = if req.method() == http::Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", cache)
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("vary", "accept-encoding");
    if status == 200 && req.method() == http::Method::GET && accepts_gzip(req) {
        builder = builder.header("content-encoding", "gzip");
    }
    builder.body(body).unwrap_or_default()
}

fn accepts_gzip(req: &http::Request<Bytes>) -> bool {
    req.headers()
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.trim().split(';').next().map(str::trim) == Some("gzip"))
}

fn wants_html(req: &http::Request<Bytes>) -> bool {
    req.headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn redirect(to: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(302)
        .header("location", to)
        .body(Bytes::new())
        .unwrap_or_default()
}

/// The console's answer to `req`, or None when the request is not for it
/// (every API call is a POST; a browser's GET of `/` is sent to the console).
pub fn serve(req: &http::Request<Bytes>) -> Option<http::Response<Bytes>> {
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return None;
    }
    let path = req.uri().path();
    if (path == "/" && wants_html(req)) || path == "/console" {
        return Some(redirect(PREFIX));
    }
    let rel = path.strip_prefix(PREFIX)?;
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if let Some(dir) = std::env::var_os(DEV_DIR_VAR) {
        return Some(serve_from_dir(req, std::path::Path::new(&dir), rel));
    }
    if ASSETS.is_empty() {
        let body = Bytes::from_static(NOT_BUILT.as_bytes());
        return Some(respond(
            req,
            503,
            "text/html; charset=utf-8",
            "no-store",
            body,
        ));
    }
    let Some(asset) = ASSETS.iter().find(|a| a.path == rel) else {
        let body = Bytes::from_static(b"Not found: no such file in the console.");
        return Some(respond(
            req,
            404,
            "text/plain; charset=utf-8",
            "no-store",
            body,
        ));
    };
    // Vite names every asset by its content's hash: cached for good. The page
    // itself is asked for again each time, so a new deployment is seen.
    let cache = if rel.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let body = if accepts_gzip(req) {
        asset.gzip
    } else {
        asset.body
    };
    Some(respond(
        req,
        200,
        content_type(rel),
        cache,
        Bytes::from_static(body),
    ))
}

/// For working on the console: serve it from this folder (console/dist) at
/// each request instead of the build embedded in the binary, so that a new
/// `npm run build` shows without restarting the api. Never set when deployed.
pub const DEV_DIR_VAR: &str = "STEWARD_CONSOLE_DIR";

/// A file name the console's build can have: no `..`, no hidden files, no
/// other characters, so nothing outside the folder is ever read.
fn safe_relative_path(rel: &str) -> bool {
    !rel.is_empty()
        && rel
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'))
        && rel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

fn serve_from_dir(
    req: &http::Request<Bytes>,
    dir: &std::path::Path,
    rel: &str,
) -> http::Response<Bytes> {
    let file = safe_relative_path(rel)
        .then(|| std::fs::read(dir.join(rel)).ok())
        .flatten();
    match file {
        Some(body) => {
            let mut r = respond(req, 200, content_type(rel), "no-cache", Bytes::from(body));
            r.headers_mut().remove("content-encoding");
            r
        }
        None => respond(
            req,
            404,
            "text/plain; charset=utf-8",
            "no-store",
            Bytes::from_static(b"Not found: no such file in the console."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> http::Request<Bytes> {
        let mut b = http::Request::builder().method("GET").uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::new()).expect("a request")
    }

    #[test]
    fn only_the_consoles_own_file_names_are_read_from_a_folder() {
        for ok in ["index.html", "assets/index-CTVw31T4.js", "assets/a_b.css"] {
            assert!(safe_relative_path(ok), "{ok}");
        }
        for bad in [
            "",
            "../secret",
            "assets/../../etc/passwd",
            ".env",
            "assets/.hidden",
            "a//b",
            "/etc/passwd",
            "a\\b",
            "a%2e%2e",
        ] {
            assert!(!safe_relative_path(bad), "{bad}");
        }
    }

    #[test]
    fn api_calls_are_not_the_consoles() {
        let post = http::Request::builder()
            .method("POST")
            .uri("/")
            .body(Bytes::new())
            .expect("a request");
        assert!(serve(&post).is_none());
        assert!(serve(&get("/", &[("accept", "application/json")])).is_none());
        assert!(serve(&get("/other", &[])).is_none());
    }

    #[test]
    fn a_browser_at_the_root_is_sent_to_the_console() {
        let r = serve(&get("/", &[("accept", "text/html,application/xhtml+xml")])).expect("served");
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/console/");
        assert_eq!(serve(&get("/console", &[])).expect("served").status(), 302);
    }

    #[test]
    fn the_page_and_its_assets_are_served_with_their_types_and_caching() {
        let page = serve(&get("/console/", &[])).expect("served");
        if ASSETS.is_empty() {
            // Built without the console: it says how to build it.
            assert_eq!(page.status(), 503);
            assert!(String::from_utf8_lossy(page.body()).contains("infra/console.sh build"));
            return;
        }
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(page.headers()["cache-control"], "no-cache");
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap_or_default()
                .contains("connect-src 'self'")
        );
        let html = String::from_utf8_lossy(page.body()).to_string();
        let script = html
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a script in the page");
        let js = serve(&get(script, &[("accept-encoding", "br, gzip")])).expect("served");
        assert_eq!(js.status(), 200);
        assert_eq!(js.headers()["content-encoding"], "gzip");
        assert_eq!(
            js.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(&js.body()[..2], &[0x1f, 0x8b], "gzip's magic bytes");
        let plain = serve(&get(script, &[])).expect("served");
        assert!(plain.headers().get("content-encoding").is_none());
        assert!(plain.body().len() > js.body().len());
        assert_eq!(
            serve(&get("/console/assets/nothing.js", &[]))
                .expect("served")
                .status(),
            404
        );
    }
}
