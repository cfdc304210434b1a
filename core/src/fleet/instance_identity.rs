//! An EC2 instance identity document and its base64 `signature` (IMDS's
//! `/latest/dynamic/instance-identity/{document,signature}`): RSA PKCS#1 v1.5
//! over SHA-256 of the document's bytes, by the key of AWS's regional "RSA"
//! certificate. Verified here against the certificates AWS publishes (shipped
//! with the code) or against a configured PEM bundle.

use aws_lc_rs::signature::{RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use x509_cert::Certificate;
use x509_cert::der::{self, Decode, Encode, Reader, SliceReader, asn1::UintRef};

use crate::ids;

/// AWS's "RSA" certificate of each Region, as "regions: ..." lines each
/// followed by the PEM block those Regions use.
const PUBLISHED: &str = include_str!("instance_identity/aws-rsa-certificates.txt");

/// rsaEncryption (RFC 8017), the only key type the base64 signature uses.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";
const END_CERTIFICATE: &str = "-----END CERTIFICATE-----";

/// The fields of the instance identity document Steward uses (AWS's camelCase JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityDocument {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub availability_zone: String,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub image_id: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub pending_time: String,
}

/// Why a document, a signature or a certificate bundle is refused. The texts
/// are clauses (no final period) for the caller to wrap; none echoes more of
/// the input than a field name or a block number.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The signature is not base64, or verifies against none of the certificates.
    #[error("the instance identity signature does not verify against the certificates")]
    SignatureMismatch,
    /// The document is not the JSON AWS serves (which field is missing/wrong).
    #[error("{0}")]
    Malformed(String),
    /// No certificate is shipped for this region.
    #[error("no AWS instance identity certificate is known for region {region}")]
    NoCertificate { region: String },
    /// A configured PEM bundle does not parse (which block, and why).
    #[error("the instance identity certificates do not parse: {0}")]
    BadCertificate(String),
}

/// The public keys of a set of certificates, ready to verify with.
#[derive(Debug, Clone)]
pub struct IdentityCertificates {
    /// SubjectPublicKeyInfo DER of each certificate (aws-lc-rs takes it as is).
    keys: Vec<Vec<u8>>,
}

impl IdentityCertificates {
    /// Every CERTIFICATE block of a PEM bundle. Whitespace may be anywhere
    /// (AWS's page prints a certificate as one line with spaces); text outside
    /// the blocks is ignored. An empty bundle, a block of another type, or a
    /// certificate without an RSA key is refused.
    pub fn from_pem(bundle: &str) -> Result<Self, IdentityError> {
        let mut keys = Vec::new();
        let mut rest = bundle;
        let mut number = 0;
        while let Some(start) = rest.find(BEGIN) {
            number += 1;
            let after_begin = &rest[start + BEGIN.len()..];
            let label_end = after_begin.find(DASHES).ok_or_else(|| {
                IdentityError::BadCertificate(format!(
                    "block {number} has an unterminated BEGIN line"
                ))
            })?;
            let label = after_begin[..label_end].trim();
            if label != "CERTIFICATE" {
                // Name the block's type only when it looks like one (a
                // pasted private key says so), never other pasted text.
                let plain =
                    label.len() <= 32 && label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ');
                return Err(IdentityError::BadCertificate(if plain {
                    format!("block {number} is a {label}, not a CERTIFICATE")
                } else {
                    format!("block {number} is not a CERTIFICATE")
                }));
            }
            let body_and_rest = &after_begin[label_end + DASHES.len()..];
            let body_end = body_and_rest.find(END_CERTIFICATE).ok_or_else(|| {
                IdentityError::BadCertificate(format!("block {number} has no END CERTIFICATE line"))
            })?;
            keys.push(public_key(&body_and_rest[..body_end], number)?);
            rest = &body_and_rest[body_end + END_CERTIFICATE.len()..];
        }
        if keys.is_empty() {
            return Err(IdentityError::BadCertificate(
                "the bundle has no BEGIN CERTIFICATE block".into(),
            ));
        }
        Ok(Self { keys })
    }

    /// AWS's published "RSA" certificate(s) for `region` (the certificate for
    /// the base64 `signature` endpoint), shipped with the code.
    pub fn published(region: &str) -> Result<Self, IdentityError> {
        published_blocks()
            .find(|(regions, _)| regions.contains(&region))
            .map(|(_, pem)| Self::from_pem(pem))
            .unwrap_or_else(|| {
                Err(IdentityError::NoCertificate {
                    region: region.to_string(),
                })
            })
    }

    /// Verifies `signature_b64` (RSA PKCS#1 v1.5 over SHA-256 of the document
    /// bytes exactly as given) against any of the keys, then parses the
    /// document. Whitespace inside the base64 is allowed: IMDS wraps it.
    pub fn verify(
        &self,
        document: &str,
        signature_b64: &str,
    ) -> Result<IdentityDocument, IdentityError> {
        let compact: String = signature_b64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let signature = STANDARD
            .decode(compact)
            .map_err(|_| IdentityError::SignatureMismatch)?;
        if signature.is_empty() {
            return Err(IdentityError::SignatureMismatch);
        }
        // AWS signs the base64 signature with RSA-1024 keys (every
        // certificate of its "RSA" tab holds a 1024-bit key), so the legacy
        // range is the only one that accepts AWS's own signatures. The keys
        // come from AWS's certificates or the operator's bundle, never from
        // the request, so a weak key cannot be chosen by the caller.
        let verified = self.keys.iter().any(|key| {
            UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, key)
                .verify(document.as_bytes(), &signature)
                .is_ok()
        });
        if !verified {
            return Err(IdentityError::SignatureMismatch);
        }
        parse_document(document)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The shipped (regions, PEM block) pairs.
fn published_blocks() -> impl Iterator<Item = (Vec<&'static str>, &'static str)> {
    PUBLISHED.split("\nregions:").skip(1).map(|entry| {
        let (regions, pem) = entry.split_once('\n').unwrap_or((entry, ""));
        (regions.split_whitespace().collect(), pem)
    })
}

/// The SubjectPublicKeyInfo DER of the certificate whose base64 is `body`.
fn public_key(body: &str, number: usize) -> Result<Vec<u8>, IdentityError> {
    let bad = |why: &str| IdentityError::BadCertificate(format!("block {number} {why}"));
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(compact).map_err(|_| bad("is not base64"))?;
    // x509-cert rather than rustls-webpki: webpki accepts only X.509 v3, and
    // AWS's certificate for ap-east-1 is a v1 certificate.
    let certificate = Certificate::from_der(&der).map_err(|e| {
        IdentityError::BadCertificate(format!("block {number} is not an X.509 certificate ({e})"))
    })?;
    let spki = certificate.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
        return Err(bad("does not hold an RSA public key"));
    }
    let key = spki
        .to_der()
        .map_err(|_| bad("has a public key that does not re-encode"))?;
    aws_lc_rs::rsa::PublicKey::from_der(&key)
        .map_err(|_| bad("has an RSA public key that does not parse"))?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .and_then(modulus_bits)
        .ok_or_else(|| bad("has an RSA public key that does not parse"))?;
    if !(1024..=8192).contains(&bits) {
        return Err(bad(&format!(
            "has a {bits}-bit RSA key; 1024 to 8192 bits are accepted"
        )));
    }
    Ok(key)
}

/// The size of the modulus of a PKCS#1 RSAPublicKey, in bits.
fn modulus_bits(rsa_public_key: &[u8]) -> Option<usize> {
    let mut reader = SliceReader::new(rsa_public_key).ok()?;
    let modulus = reader
        .sequence(|seq| {
            let modulus = UintRef::decode(seq)?;
            UintRef::decode(seq)?;
            Ok::<_, der::Error>(modulus)
        })
        .ok()?;
    if !reader.is_finished() {
        return None;
    }
    // UintRef strips the leading zero bytes.
    let bytes = modulus.as_bytes();
    let first = bytes.first()?;
    Some(bytes.len() * 8 - first.leading_zeros() as usize)
}

/// Fields that AWS always sends as strings.
const REQUIRED: [&str; 3] = ["accountId", "region", "instanceId"];
/// Fields that are strings when present; `null` counts as absent.
const OPTIONAL: [&str; 6] = [
    "privateIp",
    "availabilityZone",
    "instanceType",
    "imageId",
    "architecture",
    "pendingTime",
];

/// The document's fields, checked one by one so that a refusal names the
/// field and never quotes its value.
fn parse_document(document: &str) -> Result<IdentityDocument, IdentityError> {
    let malformed = |why: String| IdentityError::Malformed(why);
    let value: Value =
        serde_json::from_str(document).map_err(|_| malformed("the document is not JSON".into()))?;
    let Value::Object(mut fields) = value else {
        return Err(malformed("the document is not a JSON object".into()));
    };
    for name in REQUIRED {
        match fields.get(name) {
            None | Some(Value::Null) => return Err(malformed(format!("field {name} is missing"))),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(malformed(format!("field {name} is empty")));
            }
            Some(Value::String(_)) => {}
            Some(_) => return Err(malformed(format!("field {name} is not a string"))),
        }
    }
    for name in OPTIONAL {
        match fields.get(name) {
            Some(Value::Null) => {
                fields.remove(name);
            }
            None | Some(Value::String(_)) => {}
            Some(_) => return Err(malformed(format!("field {name} is not a string"))),
        }
    }
    let kept: Map<String, Value> = fields
        .into_iter()
        .filter(|(k, _)| REQUIRED.contains(&k.as_str()) || OPTIONAL.contains(&k.as_str()))
        .collect();
    let doc: IdentityDocument = serde_json::from_value(Value::Object(kept))
        .map_err(|_| malformed("the document's fields do not parse".into()))?;
    if doc.account_id.len() != 12 || !doc.account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            "field accountId is not a 12-digit account id".into(),
        ));
    }
    if !doc.instance_id.starts_with("i-") || !ids::is_instance_id(&doc.instance_id) {
        return Err(malformed(
            "field instanceId is not an EC2 instance id".into(),
        ));
    }
    if !doc
        .region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(malformed("field region is not a region name".into()));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CERT: &str = include_str!("instance_identity/test-only-cert.pem");
    const TEST_DOCUMENT: &str = include_str!("instance_identity/test-only-document.json");
    const TEST_SIGNATURE: &str = include_str!("instance_identity/test-only-document.sig");
    /// The same document signed by another RSA-2048 key (not kept).
    const OTHER_KEY_SIGNATURE: &str =
        include_str!("instance_identity/test-only-document.other-key.sig");

    fn test_certs() -> IdentityCertificates {
        IdentityCertificates::from_pem(TEST_CERT).unwrap()
    }

    #[test]
    fn verifies_a_document_signed_by_the_test_key() {
        let doc = test_certs().verify(TEST_DOCUMENT, TEST_SIGNATURE).unwrap();
        assert_eq!(
            doc,
            IdentityDocument {
                account_id: "000000000000".into(),
                region: "us-east-1".into(),
                instance_id: "i-0123456789abcdef0".into(),
                private_ip: Some("10.0.0.12".into()),
                availability_zone: "us-east-1a".into(),
                instance_type: "t3.micro".into(),
                image_id: "ami-0123456789abcdef0".into(),
                architecture: "x86_64".into(),
                pending_time: "2026-01-02T03:04:05Z".into(),
            }
        );
    }

    #[test]
    fn the_signature_may_be_wrapped_or_unwrapped() {
        // IMDS wraps the base64 at 76 columns; a client may unwrap it.
        assert!(TEST_SIGNATURE.trim().contains('\n'));
        let one_line: String = TEST_SIGNATURE.split_whitespace().collect();
        test_certs().verify(TEST_DOCUMENT, &one_line).unwrap();
        let crlf = TEST_SIGNATURE.replace('\n', "\r\n");
        test_certs().verify(TEST_DOCUMENT, &crlf).unwrap();
    }

    #[test]
    fn a_changed_byte_in_the_document_fails() {
        let certs = test_certs();
        let changed = TEST_DOCUMENT.replace("000000000000", "000000000001");
        assert_ne!(changed, TEST_DOCUMENT);
        assert_eq!(
            certs.verify(&changed, TEST_SIGNATURE),
            Err(IdentityError::SignatureMismatch)
        );
        // Whitespace counts too: the bytes are verified as given.
        let trailing_newline = format!("{TEST_DOCUMENT}\n");
        assert_eq!(
            certs.verify(&trailing_newline, TEST_SIGNATURE),
            Err(IdentityError::SignatureMismatch)
        );
    }

    #[test]
    fn a_signature_by_another_key_fails() {
        assert_eq!(
            test_certs().verify(TEST_DOCUMENT, OTHER_KEY_SIGNATURE),
            Err(IdentityError::SignatureMismatch)
        );
        // And AWS's keys do not accept the test key's signature.
        assert_eq!(
            IdentityCertificates::published("us-east-1")
                .unwrap()
                .verify(TEST_DOCUMENT, TEST_SIGNATURE),
            Err(IdentityError::SignatureMismatch)
        );
    }

    #[test]
    fn garbage_or_empty_signatures_fail() {
        let certs = test_certs();
        for signature in ["", "   \n", "not base64 at all!", "AAAA", "%%%%"] {
            assert_eq!(
                certs.verify(TEST_DOCUMENT, signature),
                Err(IdentityError::SignatureMismatch),
                "{signature:?}"
            );
        }
        // A valid signature with a byte flipped.
        let mut raw = STANDARD
            .decode(TEST_SIGNATURE.split_whitespace().collect::<String>())
            .unwrap();
        raw[10] ^= 1;
        assert_eq!(
            certs.verify(TEST_DOCUMENT, &STANDARD.encode(raw)),
            Err(IdentityError::SignatureMismatch)
        );
    }

    /// Signs `document` with the test key, for the parsing tests (the
    /// signature must verify before the document is parsed).
    fn signed(document: &str) -> (IdentityCertificates, String) {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
        let pem = include_str!("instance_identity/test-only-key.pem");
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let der = STANDARD.decode(body).unwrap();
        let key = RsaKeyPair::from_pkcs8(&der).unwrap();
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            document.as_bytes(),
            &mut signature,
        )
        .unwrap();
        (test_certs(), STANDARD.encode(signature))
    }

    fn malformed(document: &str) -> IdentityError {
        let (certs, signature) = signed(document);
        certs.verify(document, &signature).unwrap_err()
    }

    #[test]
    fn the_signing_helper_matches_the_fixture() {
        // RSA PKCS#1 v1.5 is deterministic: the helper reproduces openssl's signature.
        let (_, signature) = signed(TEST_DOCUMENT);
        assert_eq!(
            signature,
            TEST_SIGNATURE.split_whitespace().collect::<String>()
        );
    }

    #[test]
    fn malformed_documents_name_the_field_and_not_its_value() {
        let cases = [
            ("not json {", "the document is not JSON"),
            ("[1, 2]", "the document is not a JSON object"),
            (
                r#"{"region":"us-east-1","instanceId":"i-0123456789abcdef0"}"#,
                "field accountId is missing",
            ),
            (
                r#"{"accountId":"000000000000","instanceId":"i-0123456789abcdef0"}"#,
                "field region is missing",
            ),
            (
                r#"{"accountId":"000000000000","region":"us-east-1","instanceId":null}"#,
                "field instanceId is missing",
            ),
            (
                r#"{"accountId":123456789012,"region":"us-east-1","instanceId":"i-0123456789abcdef0"}"#,
                "field accountId is not a string",
            ),
            (
                r#"{"accountId":"000000000000","region":"","instanceId":"i-0123456789abcdef0"}"#,
                "field region is empty",
            ),
            (
                r#"{"accountId":"000000000000","region":"us-east-1","instanceId":"i-0123456789abcdef0","privateIp":["secret-value"]}"#,
                "field privateIp is not a string",
            ),
            (
                r#"{"accountId":"secret-value","region":"us-east-1","instanceId":"i-0123456789abcdef0"}"#,
                "field accountId is not a 12-digit account id",
            ),
            (
                r#"{"accountId":"000000000000","region":"us-east-1","instanceId":"mi-0123456789abcdef0"}"#,
                "field instanceId is not an EC2 instance id",
            ),
            (
                r#"{"accountId":"000000000000","region":"us-east-1","instanceId":"i-../secret-value"}"#,
                "field instanceId is not an EC2 instance id",
            ),
            (
                r#"{"accountId":"000000000000","region":"US East/secret-value","instanceId":"i-0123456789abcdef0"}"#,
                "field region is not a region name",
            ),
        ];
        for (document, why) in cases {
            let err = malformed(document);
            assert_eq!(err, IdentityError::Malformed(why.into()), "{document}");
            assert!(!err.to_string().contains("secret-value"), "{err}");
        }
    }

    #[test]
    fn minimal_documents_and_nulls_parse() {
        let document = r#"{"accountId":"000000000000","region":"eu-west-1","instanceId":"i-0123abcd","availabilityZone":null,"privateIp":null,"kernelId":null,"marketplaceProductCodes":["x"]}"#;
        let (certs, signature) = signed(document);
        let doc = certs.verify(document, &signature).unwrap();
        assert_eq!(doc.instance_id, "i-0123abcd");
        assert_eq!(doc.region, "eu-west-1");
        assert_eq!(doc.private_ip, None);
        assert_eq!(doc.availability_zone, "");
    }

    #[test]
    fn a_one_line_pem_with_spaces_parses() {
        // As AWS's page prints it: the whole block on one line, spaces between.
        let one_line = TEST_CERT.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(!one_line.contains('\n'));
        let certs = IdentityCertificates::from_pem(&one_line).unwrap();
        assert_eq!(certs.len(), 1);
        certs.verify(TEST_DOCUMENT, TEST_SIGNATURE).unwrap();
        // CRLF, indentation and text around the block are fine too.
        let messy = format!(
            "subject=test\r\n  {}\r\n",
            TEST_CERT.replace('\n', "\r\n    ")
        );
        IdentityCertificates::from_pem(&messy)
            .unwrap()
            .verify(TEST_DOCUMENT, TEST_SIGNATURE)
            .unwrap();
    }

    #[test]
    fn a_bundle_verifies_against_any_of_its_certificates() {
        let aws = IdentityCertificates::published("us-east-1").unwrap();
        let aws_pem = published_blocks()
            .find(|(r, _)| r.contains(&"us-east-1"))
            .unwrap()
            .1;
        let bundle = format!("{aws_pem}\n{TEST_CERT}");
        let certs = IdentityCertificates::from_pem(&bundle).unwrap();
        assert_eq!(certs.len(), 2);
        assert!(!certs.is_empty());
        certs.verify(TEST_DOCUMENT, TEST_SIGNATURE).unwrap();
        assert_eq!(aws.len(), 1);
    }

    #[test]
    fn bad_bundles_are_refused_with_the_block_and_the_reason() {
        let bad = |pem: &str| match IdentityCertificates::from_pem(pem) {
            Err(IdentityError::BadCertificate(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(""), "the bundle has no BEGIN CERTIFICATE block");
        assert_eq!(bad("  \n "), "the bundle has no BEGIN CERTIFICATE block");
        assert_eq!(
            bad("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "the bundle has no BEGIN CERTIFICATE block"
        );
        assert_eq!(
            bad(&format!(
                "{TEST_CERT}-----BEGIN CERTIFICATE-----\nM I I%%\n-----END CERTIFICATE-----\n"
            )),
            "block 2 is not base64"
        );
        assert!(
            bad("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .starts_with("block 1 is not an X.509 certificate")
        );
        assert_eq!(
            bad(&TEST_CERT.replace("-----END CERTIFICATE-----", "")),
            "block 1 has no END CERTIFICATE line"
        );
        let key = include_str!("instance_identity/test-only-key.pem");
        assert_eq!(
            bad(&format!("{TEST_CERT}{key}")),
            "block 2 is a PRIVATE KEY, not a CERTIFICATE"
        );
        assert_eq!(
            bad("-----BEGIN my password is secret-value -----"),
            "block 1 is not a CERTIFICATE"
        );
    }

    #[test]
    fn a_certificate_without_an_rsa_key_is_refused() {
        // AWS's DSA certificate (the PKCS7 tab, the usual wrong paste) and an
        // EC certificate.
        for pem in [
            include_str!("instance_identity/aws-dsa-us-east-1.pem"),
            include_str!("instance_identity/test-only-ec-cert.pem"),
        ] {
            assert_eq!(
                IdentityCertificates::from_pem(pem).unwrap_err(),
                IdentityError::BadCertificate("block 1 does not hold an RSA public key".into())
            );
        }
    }

    #[test]
    fn rsa_keys_below_1024_bits_are_refused() {
        assert_eq!(
            IdentityCertificates::from_pem(include_str!(
                "instance_identity/test-only-rsa512-cert.pem"
            ))
            .unwrap_err(),
            IdentityError::BadCertificate(
                "block 1 has a 512-bit RSA key; 1024 to 8192 bits are accepted".into()
            )
        );
    }

    #[test]
    fn modulus_sizes() {
        let bits = |pem: &str| {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = STANDARD.decode(body).unwrap();
            let cert = Certificate::from_der(&der).unwrap();
            let spki = cert.tbs_certificate().subject_public_key_info();
            modulus_bits(spki.subject_public_key.as_bytes().unwrap())
        };
        assert_eq!(bits(TEST_CERT), Some(2048));
        let (_, us_east_1) = published_blocks()
            .find(|(r, _)| r.contains(&"us-east-1"))
            .unwrap();
        assert_eq!(bits(us_east_1.trim()), Some(1024));
        assert_eq!(modulus_bits(&[]), None);
        assert_eq!(modulus_bits(&[0x30, 0x03, 0x02, 0x01, 0x05]), None);
    }

    #[test]
    fn every_shipped_certificate_parses_and_names_its_regions() {
        let mut seen = std::collections::BTreeSet::new();
        let mut blocks = 0;
        for (regions, pem) in published_blocks() {
            blocks += 1;
            assert!(!regions.is_empty(), "a block without regions");
            let certs = IdentityCertificates::from_pem(pem).unwrap();
            assert_eq!(certs.len(), 1, "{regions:?}");
            for region in regions {
                assert!(seen.insert(region), "{region} listed twice");
                let published = IdentityCertificates::published(region).unwrap();
                assert_eq!(published.keys, certs.keys, "{region}");
            }
        }
        assert!(blocks >= 30, "{blocks}");
        for region in [
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-northeast-1",
            "ap-southeast-2",
            "ap-east-1",
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-west-1",
        ] {
            assert!(seen.contains(region), "{region}");
            assert!(!IdentityCertificates::published(region).unwrap().is_empty());
        }
    }

    #[test]
    fn an_unknown_region_has_no_certificate() {
        for region in ["xx-nowhere-1", "", "us-east-1 us-west-2", "#"] {
            assert_eq!(
                IdentityCertificates::published(region).unwrap_err(),
                IdentityError::NoCertificate {
                    region: region.to_string()
                }
            );
        }
    }

    /// Real documents and signatures from EC2 instances in us-east-1,
    /// published as test data by open-source projects:
    /// - 2024: rspamd/awsregioncertificates, testdata/iid0.json and iid0.sig
    ///   (Apache-2.0);
    /// - 2022: coder/coder, coderd/awsidentity/awsidentity_test.go (the
    ///   `document` and `signature` constants, signed before AWS re-issued the
    ///   us-east-1 certificate in 2024 with the same key).
    #[test]
    fn real_aws_documents_verify_against_the_published_certificate() {
        let certs = IdentityCertificates::published("us-east-1").unwrap();
        let cases = [
            (
                include_str!("instance_identity/aws-us-east-1-2024.json"),
                include_str!("instance_identity/aws-us-east-1-2024.sig"),
                "975050371289",
                "i-0b02d936754a6d637",
            ),
            (
                include_str!("instance_identity/aws-us-east-1-2022.json"),
                include_str!("instance_identity/aws-us-east-1-2022.sig"),
                "628783029487",
                "i-076e9b91f7c420782",
            ),
        ];
        for (document, signature, account, instance) in cases {
            let doc = certs.verify(document, signature).unwrap();
            assert_eq!(doc.account_id, account);
            assert_eq!(doc.instance_id, instance);
            assert_eq!(doc.region, "us-east-1");
            // The same signature does not verify a changed document, nor under
            // another Region's key.
            let changed = document.replace(account, "000000000000");
            assert_eq!(
                certs.verify(&changed, signature),
                Err(IdentityError::SignatureMismatch)
            );
            assert_eq!(
                IdentityCertificates::published("ap-east-1")
                    .unwrap()
                    .verify(document, signature),
                Err(IdentityError::SignatureMismatch)
            );
            // The test certificate does not accept AWS's signature.
            assert_eq!(
                test_certs().verify(document, signature),
                Err(IdentityError::SignatureMismatch)
            );
        }
    }
}
