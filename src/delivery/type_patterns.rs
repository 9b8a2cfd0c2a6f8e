//! Event type names, and the patterns endpoints and streams subscribe with: an exact name,
//! `prefix.*` (every type under `prefix.`) or `*` (every type). One rule for the API that
//! checks them, the store that fans events out and the streams that filter them.

pub const MAX_TYPE_LEN: usize = 128;

/// Event type names: dotted segments of letters, digits, `_` and `-`. Nothing that could
/// break a header or an SSE field (no spaces, CR, LF or colons).
pub fn validate_type_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TYPE_LEN {
        return Err(format!("must be 1 to {MAX_TYPE_LEN} characters"));
    }
    let ok_segment =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name.split('.').all(ok_segment) {
        return Err(
            "must be dot-separated segments of letters, digits, '_' or '-' (like payment.completed)".into()
        );
    }
    Ok(())
}

/// Whether `pattern` is `*`, an event type name, or a name followed by `.*`.
pub fn is_type_pattern(pattern: &str) -> bool {
    pattern == "*" || validate_type_name(pattern.strip_suffix(".*").unwrap_or(pattern)).is_ok()
}

/// `*` matches everything, `order.*` every type under `order.`, anything else itself.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        assert!(validate_type_name("payment.completed").is_ok());
        assert!(validate_type_name("a_b-c.D9").is_ok());
        for bad in ["", "a..b", ".a", "a b", "a\nb", "a:b", "order.*"] {
            assert!(validate_type_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns() {
        for good in ["*", "order.created", "order.*", "a.b.*"] {
            assert!(is_type_pattern(good), "{good:?}");
        }
        for bad in ["", "order*", "*.x", "order.", ".*", "a b.*"] {
            assert!(!is_type_pattern(bad), "{bad:?}");
        }
    }

    #[test]
    fn matching() {
        assert!(type_matches("*", "a.b"));
        assert!(type_matches("order.*", "order.created"));
        assert!(type_matches("order.*", "order.line.added"));
        assert!(!type_matches("order.*", "orders.created"));
        assert!(!type_matches("order.*", "order"));
        assert!(type_matches("a.b", "a.b"));
        assert!(!type_matches("a.b", "a.bc"));
    }
}
