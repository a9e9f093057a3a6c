//! Page tokens (AIP-158): opaque to clients, bound to the query that issued them.
//!
//! A token is `base64url(postcard(last key) ‖ check)`, where `check` is the first 16 bytes of
//! SHA-256 over the query's identity and the payload. A token that was altered, or that comes
//! from another query (other partition, index, prefix or direction), fails the check and is
//! rejected with INVALID_ARGUMENT. Nothing in a token is secret: the store re-checks that the key
//! lies inside the queried range, so a forged token cannot read outside the query.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::item::Item;
use crate::store::Query;

/// What clients are told about a bad token.
pub(crate) const INVALID: &str = "page_token is invalid or belongs to a different query";
const CHECK_LEN: usize = 16;

fn check(query: &Query, payload: &[u8]) -> [u8; CHECK_LEN] {
    let mut hash = Sha256::new();
    hash.update(b"svcgen page token v1\0");
    for part in [
        query.index.as_deref().unwrap_or(""),
        &query.partition,
        &query.sort_key_prefix,
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.update([u8::from(query.descending)]);
    hash.update(payload);
    let digest = hash.finalize();
    let mut out = [0; CHECK_LEN];
    out.copy_from_slice(&digest[..CHECK_LEN]);
    out
}

/// The token continuing `query` after `last_key`.
pub fn encode(query: &Query, last_key: &Item) -> String {
    // Serializing an in-memory map of strings cannot fail.
    let mut bytes = postcard::to_stdvec(last_key).unwrap_or_default();
    let check = check(query, &bytes);
    bytes.extend_from_slice(&check);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The last key a token carries, if it was issued for `query`.
pub fn decode(query: &Query, token: &str) -> Result<Item, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| INVALID)?;
    let split = bytes.len().checked_sub(CHECK_LEN).ok_or(INVALID)?;
    let (payload, sent) = bytes.split_at(split);
    if check(query, payload) != sent {
        return Err(INVALID);
    }
    postcard::from_bytes(payload).map_err(|_| INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::AttributeValue;

    fn query(partition: &str) -> Query {
        Query {
            index: None,
            partition: partition.into(),
            sort_key_prefix: "TASK#".into(),
            descending: false,
            limit: 10,
            start_after: None,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering_and_reuse() {
        let key: Item = [("pk".to_owned(), AttributeValue::S("PROJECT#a".into()))].into();
        let token = encode(&query("PROJECT#a"), &key);
        assert_eq!(decode(&query("PROJECT#a"), &token), Ok(key));
        assert_eq!(decode(&query("PROJECT#b"), &token), Err(INVALID));
        let mut descending = query("PROJECT#a");
        descending.descending = true;
        assert_eq!(decode(&descending, &token), Err(INVALID));
        let mut tampered = token.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(decode(&query("PROJECT#a"), &tampered), Err(INVALID));
        for junk in ["", "!!!", "AAAA"] {
            assert_eq!(decode(&query("PROJECT#a"), junk), Err(INVALID));
        }
    }

    /// Arbitrary payloads that carry a valid check (as if the key leaked or the hash were
    /// broken) and arbitrary text: decoding never panics or allocates without bound.
    #[test]
    fn arbitrary_tokens_decode_or_fail_cleanly() {
        let cases: u64 = std::env::var("SVCGEN_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(50_000);
        let q = query("PROJECT#a");
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for case in 0..cases {
            let len = usize::try_from(next() % 64).unwrap_or(0);
            let mut payload: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            if case % 2 == 0 {
                // Mostly-valid shapes: a small map length first.
                payload.insert(0, u8::try_from(next() % 4).unwrap_or(0));
            }
            let mut bytes = payload.clone();
            bytes.extend_from_slice(&check(&q, &payload));
            if decode(&q, &URL_SAFE_NO_PAD.encode(&bytes)).is_ok() {
                decoded += 1;
            }
            let text: String = payload.iter().map(|b| char::from(b % 128)).collect();
            // Without its check, no text is accepted.
            assert_eq!(decode(&q, &text), Err(INVALID), "{text:?}");
        }
        assert!(decoded > 0, "some arbitrary payloads are well-formed keys");
    }
}
