//! Secrets in memory: values that no `Debug` or `Display` prints.

/// A secret value: never printed by `Debug` or `Display`. It serializes as
/// the plain string: only where it is meant to travel (a signed message to
/// its node, an answer to its caller).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}
