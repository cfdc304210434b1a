//! Identifiers: managed-node ids, command ids, activation ids.

use rand::Rng;

/// `mi-` followed by 17 lowercase hex digits, as SSM's hybrid nodes.
pub fn new_managed_instance_id() -> String {
    let mut rng = rand::thread_rng();
    let n: u128 = rng.r#gen::<u128>() & ((1u128 << 68) - 1);
    format!("mi-{n:017x}")
}

/// A managed instance (`mi-` + 17 hex) or an EC2 instance (`i-` + 8 or 17 hex).
pub fn is_instance_id(s: &str) -> bool {
    let hex = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if let Some(rest) = s.strip_prefix("mi-") {
        rest.len() == 17 && hex(rest)
    } else if let Some(rest) = s.strip_prefix("i-") {
        (rest.len() == 8 || rest.len() == 17) && hex(rest)
    } else {
        false
    }
}

/// Command ids are UUIDs, as SSM's.
pub fn new_command_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn is_command_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Activation ids are UUIDs; activation codes are 20 characters of base62.
pub fn new_activation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SSM's ActivationId pattern: a lower-case hyphenated UUID.
pub fn is_activation_id(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
        && uuid::Uuid::parse_str(s).is_ok()
}

pub fn new_activation_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Access key ids look like AWS's (`AKIA…`) but say whose they are: `AKST`.
pub fn new_access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("AKST{tail}")
}

pub fn new_secret_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A UUID-shaped id that follows from `text`: the same text, the same id
/// (an execution's id from its ClientToken, a child's from its parent's).
pub fn id_from(text: &str) -> String {
    let h = sha256_hex(text.as_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A SHA-256 hex digest, used to keep activation codes without keeping them.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid() {
        for _ in 0..100 {
            assert!(is_instance_id(&new_managed_instance_id()));
            assert!(is_command_id(&new_command_id()));
        }
        assert_eq!(new_activation_code().len(), 20);
        assert_eq!(new_access_key_id().len(), 20);
        assert_eq!(new_secret_access_key().len(), 40);
    }

    #[test]
    fn instance_id_rules() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-01234567"));
        assert!(is_instance_id("mi-0123456789abcdef0"));
        assert!(!is_instance_id("mi-0123456789ABCDEF0"));
        assert!(!is_instance_id("mi-0123"));
        assert!(!is_instance_id("x-01234567"));
        assert!(!is_instance_id(""));
    }
}
