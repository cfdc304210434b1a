//! SigV4 verification of every `AmazonSSM.*` request against Steward's own
//! access keys, and what a key's policy allows.
//!
//! The signature is recomputed with the `aws-sigv4` crate over exactly the
//! headers the client listed in `SignedHeaders`, at the client's
//! `X-Amz-Date`, and compared in constant time. `aws-sigv4` always adds
//! `host` and `x-amz-date` to what it signs; when the client did not sign
//! them they are excluded through `SigningSettings::excluded_headers`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use steward_aws::Stack;
use steward_aws::identity_service::LoadedKey;
use steward_core::SsmError;
use steward_core::access::{Caller, Policy};
use steward_core::secret::Secret;
use subtle::ConstantTimeEq;

/// SigV4's allowance for clock skew.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// IAM is global: clients sign it for `us-east-1` whatever their region.
const IAM_SIGNING_REGION: &str = "us-east-1";

/// Who signed the request, and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub access_key_id: String,
    pub user_name: String,
    pub policy: Policy,
}

impl Principal {
    /// The caller as an operation sees it: its ARN names the key's user in
    /// this stack's account.
    pub fn caller(&self, account: &str) -> Caller {
        Caller {
            access_key_id: self.access_key_id.clone(),
            user_arn: format!("arn:aws:iam::{account}:user/{}", self.user_name),
            policy: self.policy.clone(),
        }
    }

    /// `op` is the operation name (`SendCommand`); the action is `ssm:<op>`.
    pub fn authorize(&self, op: &str) -> Result<(), SsmError> {
        let action = format!("ssm:{op}");
        if self.policy.allows_action(&action) {
            Ok(())
        } else {
            Err(SsmError::AccessDeniedException(format!(
                "User: {} is not authorized to perform: {action} because no policy of access key {} allows it. Ask an administrator to grant {action}.",
                self.user_name, self.access_key_id
            )))
        }
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

fn incomplete(what: &str) -> SsmError {
    SsmError::IncompleteSignature(format!(
        "Authorization header requires {what}. Sign the request with SigV4 (AWS4-HMAC-SHA256), as the AWS CLI and SDKs do."
    ))
}

pub fn parse_authorization(value: &str) -> Result<AuthHeader, SsmError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SsmError::IncompleteSignature(
            "Only AWS4-HMAC-SHA256 (SigV4) signatures are accepted.".into(),
        )
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| incomplete("'Credential' parameter"))?;
    let signed = signed.ok_or_else(|| incomplete("'SignedHeaders' parameter"))?;
    let signature = signature.ok_or_else(|| incomplete("'Signature' parameter"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" || scope[0].is_empty() {
        return Err(incomplete(
            "a Credential of the form <AccessKeyId>/<date>/<region>/ssm/aws4_request",
        ));
    }
    let signed_headers: Vec<String> = signed
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete("'host' among the SignedHeaders"));
    }
    Ok(AuthHeader {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

/// SigV4's basic ISO 8601 form, `20240102T030405Z`.
const AMZ_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// `20240102T030405Z` → time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let t = time::PrimitiveDateTime::parse(s, AMZ_DATE)
        .ok()?
        .assume_utc();
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Time → `20240102T030405Z` (whole seconds, as SigV4 writes them).
pub fn format_amz_date(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(AMZ_DATE)
        // Only a year past 9999 has no such form.
        .unwrap_or_else(|_| "99991231T235959Z".into())
}

/// SigV4's clock check: a request signed more than [`MAX_SKEW`] before or
/// after `now` is refused, in AWS's words (the request's time, the bound it
/// broke, and the server's time it was computed from).
pub fn check_skew(signed_at: SystemTime, now: SystemTime) -> Result<(), SsmError> {
    let minutes = MAX_SKEW.as_secs() / 60;
    let at = format_amz_date(signed_at);
    let now_text = format_amz_date(now);
    if signed_at + MAX_SKEW < now {
        let bound = format_amz_date(now - MAX_SKEW);
        return Err(SsmError::InvalidSignatureException(format!(
            "Signature expired: {at} is now earlier than {bound} ({now_text} - {minutes} min.)"
        )));
    }
    if signed_at > now + MAX_SKEW {
        let bound = format_amz_date(now + MAX_SKEW);
        return Err(SsmError::InvalidSignatureException(format!(
            "Signature not yet current: {at} is still later than {bound} ({now_text} + {minutes} min.)"
        )));
    }
    Ok(())
}

fn bad_signature() -> SsmError {
    SsmError::InvalidSignatureException(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
    )
}

fn header_str<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Recomputes the SigV4 signature of `req` with `secret` over exactly the
/// headers in `auth.signed_headers`, at `time`. Hex, as in the header.
pub fn compute_signature(
    req: &http::Request<Bytes>,
    auth: &AuthHeader,
    secret: &Secret,
    time: SystemTime,
) -> Result<String, SsmError> {
    let signed: BTreeSet<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for name in &signed {
        let mut found = false;
        for v in req.headers().get_all(*name) {
            let v = v.to_str().map_err(|_| bad_signature())?;
            headers.push((name, v));
            found = true;
        }
        if !found {
            return Err(bad_signature());
        }
    }
    // aws-sigv4 adds these two itself; keep them out unless the client signed them.
    let excluded: Vec<std::borrow::Cow<'static, str>> = ["host", "x-amz-date"]
        .into_iter()
        .filter(|h| !signed.contains(h))
        .map(std::borrow::Cow::Borrowed)
        .collect();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(excluded);
    let host = header_str(req, "host").unwrap_or("localhost");
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = format!("https://{host}{path_and_query}");
    let identity = Credentials::new(
        &auth.access_key_id,
        secret.expose(),
        None,
        None,
        "steward-verifier",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| bad_signature())?
        .into();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(req.body()),
    )
    .map_err(|_| bad_signature())?;
    let out = sign(signable, &params).map_err(|_| bad_signature())?;
    Ok(out.signature().to_string())
}

/// Verifies the request's SigV4 signature for `service` (`ssm` or `iam`);
/// nothing else happens for a request that fails here.
pub async fn authenticate(
    stack: &Stack,
    req: &http::Request<Bytes>,
    service: &str,
) -> Result<Principal, SsmError> {
    let Some(value) = header_str(req, "authorization") else {
        return Err(SsmError::MissingAuthenticationToken(
            "Missing Authentication Token: sign the request with SigV4 using a Steward access key."
                .into(),
        ));
    };
    let auth = parse_authorization(value)?;
    check_scope(&auth, req, service, &stack.settings.region)?;
    verify(stack, req, &auth, SystemTime::now()).await
}

/// What the signature must cover besides itself: the service and region it
/// was made for, and the operation (`X-Amz-Target`), so a signed body cannot
/// be replayed under another operation, region or service.
pub fn check_scope(
    auth: &AuthHeader,
    req: &http::Request<Bytes>,
    service: &str,
    region: &str,
) -> Result<(), SsmError> {
    if auth.service != service {
        return Err(SsmError::InvalidSignatureException(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    let region_ok =
        auth.region == region || (service == "iam" && auth.region == IAM_SIGNING_REGION);
    if !region_ok {
        return Err(SsmError::InvalidSignatureException(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        )));
    }
    if req.headers().contains_key("x-amz-target")
        && !auth.signed_headers.iter().any(|h| h == "x-amz-target")
    {
        return Err(SsmError::InvalidSignatureException(
            "The X-Amz-Target header must be among the SignedHeaders: it names the operation the signature is for.".into(),
        ));
    }
    Ok(())
}

async fn verify(
    stack: &Stack,
    req: &http::Request<Bytes>,
    auth: &AuthHeader,
    now: SystemTime,
) -> Result<Principal, SsmError> {
    let amz_date =
        header_str(req, "x-amz-date").ok_or_else(|| incomplete("an X-Amz-Date header"))?;
    let time = parse_amz_date(amz_date)
        .ok_or_else(|| incomplete("an X-Amz-Date header of the form YYYYMMDD'T'HHMMSS'Z'"))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(SsmError::InvalidSignatureException(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'.",
            auth.date,
            &amz_date[..amz_date.len().min(8)]
        )));
    }
    check_skew(time, now)?;
    let unrecognized = || {
        SsmError::UnrecognizedClientException(
            "The security token included in the request is invalid.".into(),
        )
    };
    // Kept in memory for a short while by the stack's identity adapters.
    let LoadedKey {
        key,
        secret,
        policy,
    } = stack
        .identity()
        .access_key(&auth.access_key_id)
        .await?
        .ok_or_else(unrecognized)?;
    if !key.is_active() {
        return Err(unrecognized());
    }
    let expected = compute_signature(req, auth, &secret, time)?;
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        tracing::info!(access_key_id = %auth.access_key_id, "request signature does not match");
        return Err(bad_signature());
    }
    let policy = policy?;
    Ok(Principal {
        access_key_id: key.access_key_id,
        user_name: key.user_name,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs like a client: aws-sigv4's own signing of a complete request.
    fn signed_request(secret: &str, time: SystemTime, body: &str) -> http::Request<Bytes> {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        steward_aws::testing::signed_at(
            "DescribeInstanceInformation",
            &body,
            "AKSTEXAMPLE",
            secret,
            time,
        )
    }

    #[test]
    fn recomputed_signature_matches_a_clients_and_detects_changes() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let req = signed_request("secret-one", time, "{}");
        let value = req.headers()["authorization"].to_str().unwrap().to_string();
        let auth = parse_authorization(&value).unwrap();
        assert_eq!(auth.access_key_id, "AKSTEXAMPLE");
        assert_eq!(auth.service, "ssm");
        let date = parse_amz_date(req.headers()["x-amz-date"].to_str().unwrap()).unwrap();
        assert_eq!(date, time);
        let ok = compute_signature(&req, &auth, &Secret::new("secret-one"), date).unwrap();
        assert_eq!(ok, auth.signature);
        let wrong = compute_signature(&req, &auth, &Secret::new("secret-two"), date).unwrap();
        assert_ne!(wrong, auth.signature);
        // Same headers, other body.
        let mut tampered = req.clone();
        *tampered.body_mut() = Bytes::from_static(b"{\"x\":1}");
        assert_ne!(
            compute_signature(&tampered, &auth, &Secret::new("secret-one"), date).unwrap(),
            auth.signature
        );
        // An unsigned header may change freely.
        let mut extra = req.clone();
        extra
            .headers_mut()
            .insert("user-agent", "other".parse().unwrap());
        assert_eq!(
            compute_signature(&extra, &auth, &Secret::new("secret-one"), date).unwrap(),
            auth.signature
        );
    }

    #[test]
    fn a_signature_more_than_15_minutes_off_is_refused_in_awss_words() {
        // 2023-11-14T22:13:20Z.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let min = Duration::from_secs(60);
        let refused = |at: SystemTime| {
            let e = check_skew(at, now).unwrap_err();
            assert_eq!(e.code(), "InvalidSignatureException");
            e.to_string()
        };
        assert_eq!(
            refused(now - 15 * min - Duration::from_secs(1)),
            "Signature expired: 20231114T215819Z is now earlier than 20231114T215820Z (20231114T221320Z - 15 min.)"
        );
        assert_eq!(
            refused(now + 15 * min + Duration::from_secs(1)),
            "Signature not yet current: 20231114T222821Z is still later than 20231114T222820Z (20231114T221320Z + 15 min.)"
        );
        // Up to 15 minutes either way is the allowance itself.
        for at in [now - 15 * min, now - min, now, now + min, now + 15 * min] {
            assert_eq!(check_skew(at, now), Ok(()));
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(
            parse_authorization("Basic abc").unwrap_err().code(),
            "IncompleteSignature"
        );
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ssm/aws4_request, Signature=ab"
            )
            .unwrap_err()
            .code(),
            "IncompleteSignature"
        );
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host, Signature=ab"
            )
            .unwrap_err()
            .code(),
            "IncompleteSignature"
        );
        assert!(parse_amz_date("2024-01-01").is_none());
    }

    #[test]
    fn the_signature_must_name_this_service_region_and_operation() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let req = signed_request("secret-one", time, "{}");
        let value = req.headers()["authorization"].to_str().unwrap().to_string();
        let auth = parse_authorization(&value).unwrap();
        assert!(check_scope(&auth, &req, "ssm", "us-east-1").is_ok());
        // Signed for us-east-1, served by a stack in eu-west-1.
        let e = check_scope(&auth, &req, "ssm", "eu-west-1").unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException");
        assert!(e.to_string().contains("valid region, not 'us-east-1'"));
        // An ssm signature is not an iam one.
        let e = check_scope(&auth, &req, "iam", "us-east-1").unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException");
        assert_eq!(
            e.to_string(),
            "Credential should be scoped to correct service: 'iam'."
        );
        // IAM is signed for us-east-1 by clients of any region.
        let iam = AuthHeader {
            service: "iam".into(),
            ..auth.clone()
        };
        assert!(check_scope(&iam, &req, "iam", "eu-west-1").is_ok());
        // X-Amz-Target sent but not signed: the body could be replayed under
        // another operation.
        let unsigned_target = AuthHeader {
            signed_headers: auth
                .signed_headers
                .iter()
                .filter(|h| *h != "x-amz-target")
                .cloned()
                .collect(),
            ..auth.clone()
        };
        assert!(auth.signed_headers.iter().any(|h| h == "x-amz-target"));
        let e = check_scope(&unsigned_target, &req, "ssm", "us-east-1").unwrap_err();
        assert_eq!(e.code(), "InvalidSignatureException");
    }

    #[test]
    fn policy_decides_authorization() {
        let p = Principal {
            access_key_id: "AKST1".into(),
            user_name: "ops".into(),
            policy: Policy::parse(
                r#"{"Statement":[{"Effect":"Allow","Action":"ssm:Describe*","Resource":"*"}]}"#,
            )
            .unwrap(),
        };
        assert!(p.authorize("DescribeInstanceInformation").is_ok());
        assert_eq!(
            p.authorize("SendCommand").unwrap_err().code(),
            "AccessDeniedException"
        );
    }
}
