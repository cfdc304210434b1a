//! What every Parameter Store operation works with.

use super::ports::ParameterStore;
use super::secrets::Sealer;
use crate::access::Authorizer;
use crate::arn::ArnScope;

pub struct ParameterContext<'a> {
    pub store: &'a dyn ParameterStore,
    /// Seals and opens SecureString values (KMS envelope, data-key cache).
    pub sealer: &'a Sealer,
    /// Who asks; every parameter touched is authorized by its ARN.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    /// The key SecureStrings are sealed under when `KeyId` is not given.
    pub default_key_id: &'a str,
    /// Epoch seconds.
    pub now: f64,
}
