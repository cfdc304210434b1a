//! Embeds the web console's build (console/dist, made by `npm run build` in
//! console/, which infra/console.sh runs) in the api binary, each file also
//! gzipped, so that one function serves the console from the API's own
//! origin. Without a build the table is empty and the api says how to make
//! one (src/console.rs).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("../../console/dist");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Cargo scans a directory named here for changes to anything inside it.
    // A path that does not exist would rerun this script at every build, so
    // without a build the console's folder is watched, where one will appear.
    let watched = if dist.exists() {
        dist.clone()
    } else {
        manifest.join("../../console")
    };
    println!("cargo:rerun-if-changed={}", watched.display());

    let mut found = Vec::new();
    files(&dist, &mut found);
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, path) in found.iter().enumerate() {
        let rel = path
            .strip_prefix(&dist)
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        let body = fs::read(path).expect("read a console file");
        let gz_path = out_dir.join(format!("console-{i}.gz"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&body).expect("gzip in memory");
        fs::write(&gz_path, gz.finish().expect("gzip in memory")).expect("write to OUT_DIR");
        let _ = writeln!(
            table,
            "    Asset {{ path: {rel:?}, body: include_bytes!({:?}), gzip: include_bytes!({:?}) }},",
            path.canonicalize()
                .expect("a file that exists")
                .display()
                .to_string(),
            gz_path.display().to_string()
        );
    }
    table.push_str("];\n");
    fs::write(out_dir.join("console_assets.rs"), table).expect("write to OUT_DIR");
}
