//! SecureString values, sealed with a KMS envelope.
//!
//! Each write asks KMS for a fresh data key (`GenerateDataKey`, AES-256)
//! under the parameter's key with the encryption context
//! `{"PARAMETER_ARN": <arn>}`, seals the value with AES-256-GCM using the same
//! ARN as associated data, and stores the encrypted data key beside the
//! ciphertext. Both bind the ciphertext to its parameter: copied to another
//! parameter, KMS refuses the data key (the context differs) and GCM refuses
//! the ciphertext.
//!
//! Reads decrypt the data key with KMS once, then keep the plaintext data key
//! for a bounded time (`cache_ttl`, at most `max_entries` keys), so repeated
//! reads of one version make no KMS call until the entry expires. SSM's
//! standard tier makes one `Decrypt` per read.
//!
//! The envelope (base64, what a read without `WithDecryption` returns):
//! `"SWP1" | u16 len | key ARN | u16 len | encrypted data key | 12-byte nonce | ciphertext+tag`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::ports::DataKeys;
use crate::error::SsmError;
use crate::secret::Secret;

/// The encryption-context key SSM itself uses for parameters.
pub const CONTEXT_KEY: &str = "PARAMETER_ARN";
const MAGIC: &[u8; 4] = b"SWP1";

/// KMS calls made and avoided, for the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SealerStats {
    pub generate_calls: u64,
    pub decrypt_calls: u64,
    pub cache_hits: u64,
}

struct Cached {
    key: [u8; 32],
    at: Instant,
}

pub struct Sealer {
    keys: Box<dyn DataKeys>,
    cache_ttl: Duration,
    max_entries: usize,
    // Keyed by (parameter ARN, encrypted data key): a hit needs both the
    // same stored key and the same context KMS would have checked.
    cache: Mutex<HashMap<(String, Vec<u8>), Cached>>,
    generate_calls: AtomicU64,
    decrypt_calls: AtomicU64,
    cache_hits: AtomicU64,
}

/// The parts of a sealed value.
struct Envelope<'a> {
    key_arn: &'a str,
    encrypted_key: &'a [u8],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

fn not_sealed() -> SsmError {
    SsmError::InvalidKeyId(
        "The stored SecureString value is not a Steward envelope, so it cannot be decrypted. Put the parameter again with its value."
            .into(),
    )
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], SsmError> {
    if bytes.len() < n {
        return Err(not_sealed());
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_prefixed<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], SsmError> {
    let len = take(bytes, 2)?;
    let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
    take(bytes, n)
}

impl<'a> Envelope<'a> {
    fn parse(raw: &'a [u8]) -> Result<Self, SsmError> {
        let mut rest = raw;
        if take(&mut rest, 4)? != MAGIC {
            return Err(not_sealed());
        }
        let key_arn = std::str::from_utf8(take_prefixed(&mut rest)?).map_err(|_| not_sealed())?;
        let encrypted_key = take_prefixed(&mut rest)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(take(&mut rest, NONCE_LEN)?);
        Ok(Self {
            key_arn,
            encrypted_key,
            nonce,
            ciphertext: rest,
        })
    }

    fn encode(&self) -> Result<String, SsmError> {
        let mut out = Vec::with_capacity(
            4 + 4
                + self.key_arn.len()
                + self.encrypted_key.len()
                + NONCE_LEN
                + self.ciphertext.len(),
        );
        out.extend_from_slice(MAGIC);
        for part in [self.key_arn.as_bytes(), self.encrypted_key] {
            let len = u16::try_from(part.len()).map_err(|_| SsmError::internal())?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(self.ciphertext);
        Ok(B64.encode(out))
    }
}

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, SsmError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| SsmError::internal())
}

impl Sealer {
    pub fn new(keys: Box<dyn DataKeys>, cache_ttl: Duration, max_entries: usize) -> Self {
        Self {
            keys,
            cache_ttl,
            max_entries,
            cache: Mutex::new(HashMap::new()),
            generate_calls: AtomicU64::new(0),
            decrypt_calls: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> SealerStats {
        SealerStats {
            generate_calls: self.generate_calls.load(Ordering::Relaxed),
            decrypt_calls: self.decrypt_calls.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// Seals `plaintext` for the parameter `parameter_arn` under `key_id`
    /// (an id, ARN or alias). `InvalidKeyId` when KMS does not know the key.
    pub async fn seal(
        &self,
        key_id: &str,
        parameter_arn: &str,
        plaintext: &str,
    ) -> Result<String, SsmError> {
        let context = [(CONTEXT_KEY, parameter_arn)];
        let data_key = self.keys.generate(key_id, &context).await?;
        self.generate_calls.fetch_add(1, Ordering::Relaxed);
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plaintext.as_bytes().to_vec();
        aead_key(&data_key.plaintext)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(parameter_arn.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SsmError::internal())?;
        Envelope {
            key_arn: &data_key.key_arn,
            encrypted_key: &data_key.encrypted,
            nonce,
            ciphertext: &sealed,
        }
        .encode()
    }

    /// The KMS key ARN a sealed value names, without calling KMS (for the
    /// `kms:Decrypt` authorization that precedes [`Sealer::open`]).
    pub fn key_arn(sealed: &str) -> Result<String, SsmError> {
        let raw = B64.decode(sealed).map_err(|_| not_sealed())?;
        Ok(Envelope::parse(&raw)?.key_arn.to_string())
    }

    /// Opens a value sealed for `parameter_arn`. A value sealed for another
    /// parameter fails with `InvalidKeyId` and a message without the value.
    pub async fn open(&self, parameter_arn: &str, sealed: &str) -> Result<Secret, SsmError> {
        let raw = B64.decode(sealed).map_err(|_| not_sealed())?;
        let envelope = Envelope::parse(&raw)?;
        let data_key = self.data_key(parameter_arn, envelope.encrypted_key).await?;
        let mut buf = envelope.ciphertext.to_vec();
        let plain = aead_key(&data_key)?
            .open_in_place(
                Nonce::assume_unique_for_key(envelope.nonce),
                Aad::from(parameter_arn.as_bytes()),
                &mut buf,
            )
            .map_err(|_| foreign(parameter_arn))?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| foreign(parameter_arn))?;
        Ok(Secret::new(text))
    }

    async fn data_key(&self, arn: &str, encrypted: &[u8]) -> Result<[u8; 32], SsmError> {
        let cache_key = (arn.to_string(), encrypted.to_vec());
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = cache.get(&cache_key)
                && hit.at.elapsed() < self.cache_ttl
            {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(hit.key);
            }
        }
        let key = self
            .keys
            .decrypt(encrypted, &[(CONTEXT_KEY, arn)])
            .await
            .map_err(|e| match e {
                SsmError::InternalServerError(_) => e,
                _ => foreign(arn),
            })?;
        self.decrypt_calls.fetch_add(1, Ordering::Relaxed);
        if self.max_entries > 0 && !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let ttl = self.cache_ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
            if cache.len() >= self.max_entries
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
            cache.insert(
                cache_key,
                Cached {
                    key,
                    at: Instant::now(),
                },
            );
        }
        Ok(key)
    }
}

fn foreign(arn: &str) -> SsmError {
    SsmError::InvalidKeyId(format!(
        "The value stored for {arn} cannot be decrypted: its data key or ciphertext was not sealed for this parameter. Put the parameter again with its value."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parameters::memory::MemoryDataKeys;

    const A: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/app/a";
    const B: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/app/b";

    fn sealer(ttl: u64) -> Sealer {
        Sealer::new(
            Box::new(MemoryDataKeys::default()),
            Duration::from_secs(ttl),
            16,
        )
    }

    #[tokio::test]
    async fn round_trip_and_the_cache_saves_decrypts() {
        let s = sealer(300);
        let sealed = s.seal("stack-key", A, "hunter2").await.unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(s.open(A, &sealed).await.unwrap().expose(), "hunter2");
        assert_eq!(s.open(A, &sealed).await.unwrap().expose(), "hunter2");
        let st = s.stats();
        assert_eq!(
            (st.generate_calls, st.decrypt_calls, st.cache_hits),
            (1, 1, 1)
        );
        assert!(Sealer::key_arn(&sealed).unwrap().ends_with("key/stack-key"));
    }

    #[tokio::test]
    async fn without_a_cache_every_read_decrypts() {
        let s = sealer(0);
        let sealed = s.seal("stack-key", A, "v").await.unwrap();
        for _ in 0..3 {
            s.open(A, &sealed).await.unwrap();
        }
        assert_eq!(s.stats().decrypt_calls, 3);
    }

    #[tokio::test]
    async fn a_ciphertext_moved_to_another_parameter_does_not_open() {
        let s = sealer(300);
        let sealed = s.seal("stack-key", A, "hunter2").await.unwrap();
        // Warm the cache for A first: the cache must not let B through either.
        s.open(A, &sealed).await.unwrap();
        let err = s.open(B, &sealed).await.unwrap_err();
        assert_eq!(err.code(), "InvalidKeyId");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn tampering_and_garbage_are_refused() {
        let s = sealer(300);
        let sealed = s.seal("stack-key", A, "hunter2").await.unwrap();
        let mut raw = B64.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = B64.encode(raw);
        assert_eq!(
            s.open(A, &tampered).await.unwrap_err().code(),
            "InvalidKeyId"
        );
        assert_eq!(
            s.open(A, "not base64!").await.unwrap_err().code(),
            "InvalidKeyId"
        );
        assert_eq!(
            s.open(A, "U1dQMQ==").await.unwrap_err().code(),
            "InvalidKeyId"
        );
    }

    #[tokio::test]
    async fn an_unknown_key_is_invalid_key_id() {
        let s = sealer(300);
        let err = s.seal("nope", A, "v").await.unwrap_err();
        assert_eq!(err.code(), "InvalidKeyId");
    }
}
