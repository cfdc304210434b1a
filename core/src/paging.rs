//! `NextToken`s: opaque to clients, a small JSON cursor to us.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::error::SsmError;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Cursor {
    /// Nodes after this InstanceId.
    Node { after: String },
    /// Activations after (CreatedDate, ActivationId).
    Activation { created: f64, id: String },
    /// Position in an explicit, sorted list of ids.
    Id { after: String },
}

pub fn encode(c: &Cursor) -> String {
    B64.encode(serde_json::to_vec(c).unwrap_or_default())
}

pub fn decode(token: &str) -> Result<Cursor, SsmError> {
    B64.decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid_token)
}

pub fn invalid_token() -> SsmError {
    SsmError::InvalidNextToken(
        "The NextToken is not valid; pass the NextToken of the previous response unchanged, or omit it to start over.".into(),
    )
}

/// One page of a listing held whole in memory: at most `limit` items from
/// the position `token` names (`None`: the start), and the token of the
/// next page if more follow. The position is the item's index.
pub fn page_of<T>(
    items: Vec<T>,
    limit: usize,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), SsmError> {
    let start = match token {
        None => 0,
        Some(t) => match decode(t)? {
            Cursor::Id { after } => after.parse::<usize>().map_err(|_| invalid_token())?,
            _ => return Err(invalid_token()),
        },
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let end = start + page.len();
    let next = (end < total).then(|| {
        encode(&Cursor::Id {
            after: end.to_string(),
        })
    });
    Ok((page, next))
}

/// SSM's MaxResults: `None` gives `default`; outside `[min, max]` is a
/// ValidationException naming the bounds.
pub fn max_results(
    given: Option<i64>,
    min: i64,
    max: i64,
    default: i64,
) -> Result<usize, SsmError> {
    match given {
        None => Ok(default as usize),
        Some(n) if (min..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between {min} and {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let c = Cursor::Activation {
            created: 1.5,
            id: "x".into(),
        };
        assert_eq!(decode(&encode(&c)).unwrap(), c);
        assert_eq!(decode("nope!").unwrap_err().code(), "InvalidNextToken");
        assert_eq!(
            max_results(Some(4), 5, 50, 50).unwrap_err().code(),
            "ValidationException"
        );
        assert_eq!(max_results(None, 5, 50, 50).unwrap(), 50);
    }

    #[test]
    fn pages_of_a_list_cover_it_once_in_order() {
        let items: Vec<u32> = (0..23).collect();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = page_of(items.clone(), 10, token.as_deref()).unwrap();
            assert!(page.len() <= 10);
            seen.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert_eq!(
            page_of(items, 10, Some("garbage")).unwrap_err().code(),
            "InvalidNextToken"
        );
    }
}
