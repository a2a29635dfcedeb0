//! Cursor pagination shared by every list route (docs/dfns.md §8.2). Lists are newest first; the
//! opaque token is the base64url of the sequence number of the last item returned, so items
//! created between two page requests neither repeat nor shift the next page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::errors::{ApiError, ApiResult};

/// Largest page served; a larger `limit` is capped (Dfns' maximum is unpublished, U15).
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub limit: Option<String>,
    pub pagination_token: Option<String>,
}

impl PageQuery {
    pub fn limit(&self, default: usize) -> ApiResult<usize> {
        match self.limit.as_deref() {
            None | Some("") => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(0) | Err(_) => Err(ApiError::bad_request(format!(
                    "limit must be a positive integer, got {raw:?}"
                ))),
                Ok(n) => Ok(n.min(MAX_LIMIT)),
            },
        }
    }

    /// Sequence number below which the page starts (exclusive), if a token was given.
    pub fn cursor(&self) -> ApiResult<Option<u64>> {
        match self.pagination_token.as_deref() {
            None | Some("") => Ok(None),
            Some(token) => URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| ApiError::bad_request("invalid paginationToken")),
        }
    }
}

/// One page of `items` (any order) by descending sequence number.
pub fn page<T: Clone>(
    items: impl IntoIterator<Item = (u64, T)>,
    query: &PageQuery,
    default_limit: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let limit = query.limit(default_limit)?;
    let cursor = query.cursor()?;
    let mut all: Vec<(u64, T)> = items
        .into_iter()
        .filter(|(seq, _)| cursor.is_none_or(|c| *seq < c))
        .collect();
    all.sort_by_key(|item| std::cmp::Reverse(item.0));
    let next = if all.len() > limit {
        Some(URL_SAFE_NO_PAD.encode(all[limit - 1].0.to_string()))
    } else {
        None
    };
    all.truncate(limit);
    Ok((all.into_iter().map(|(_, item)| item).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<&str>, token: Option<String>) -> PageQuery {
        PageQuery {
            limit: limit.map(str::to_owned),
            pagination_token: token,
        }
    }

    #[test]
    fn pages_walk_newest_first_without_repeats() {
        let items: Vec<(u64, u64)> = (1..=5).map(|i| (i, i)).collect();
        let (first, token) = page(items.clone(), &q(Some("2"), None), 50).unwrap();
        assert_eq!(first, vec![5, 4]);
        let (second, token) = page(items.clone(), &q(Some("2"), token), 50).unwrap();
        assert_eq!(second, vec![3, 2]);
        let (third, token) = page(items, &q(Some("2"), token), 50).unwrap();
        assert_eq!(third, vec![1]);
        assert!(token.is_none());
    }

    #[test]
    fn bad_limit_and_token_are_rejected() {
        assert!(page(Vec::<(u64, u8)>::new(), &q(Some("0"), None), 50).is_err());
        assert!(page(Vec::<(u64, u8)>::new(), &q(None, Some("!!".into())), 50).is_err());
    }
}
