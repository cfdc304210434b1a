//! Parameter names and hierarchies: SSM's rules for names, paths and ARNs.

/// The parent path of a name: `/a/b/c` → `/a/b`, `/a` and `a` → `/`.
pub fn parent_of(name: &str) -> &str {
    match name.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &name[..i],
    }
}
