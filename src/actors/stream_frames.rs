//! Committed events as streams send them: encoded once per event (with and without the
//! `event:` line), shared by reference by every stream actor that wants them.

use actix_web::web::Bytes;

use crate::delivery::type_patterns::type_matches;
use crate::store::events;

/// A committed event as streams see it: encoded once, shared by every stream.
#[derive(Debug)]
pub struct StreamEvent {
    pub seq: i64,
    pub org_id: String,
    pub event_type: String,
    /// `id:`, `event:` (the type) and `data:` lines.
    named: Bytes,
    /// Without the `event:` line: a browser's `EventSource.onmessage` receives every type,
    /// which it cannot when frames are named.
    unnamed: Bytes,
    /// The envelope, parsed the first time a stream's payload filter asks.
    text: String,
    parsed: std::sync::OnceLock<serde_json::Value>,
}

impl StreamEvent {
    pub fn new(e: &events::Event) -> Self {
        let data = crate::delivery::envelope::envelope_text(e.envelope_fields());
        let id = e.seq.to_string();
        Self {
            seq: e.seq,
            org_id: e.org_id.clone(),
            named: encode_data(&id, Some(&e.event_type), &data),
            unnamed: encode_data(&id, None, &data),
            event_type: e.event_type.clone(),
            text: data,
            parsed: std::sync::OnceLock::new(),
        }
    }

    /// The envelope as JSON (for payload filters).
    pub fn envelope(&self) -> &serde_json::Value {
        self.parsed.get_or_init(|| serde_json::from_str(&self.text).unwrap_or_default())
    }

    pub fn frame(&self, named: bool) -> &[u8] {
        if named { &self.named } else { &self.unnamed }
    }
}

/// An event-stream message. Ids and types never hold line breaks (they are validated), and
/// data is one `data:` line per line.
fn encode_data(id: &str, event_type: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + id.len() + 32);
    out.push_str("id: ");
    out.push_str(id);
    out.push('\n');
    if let Some(t) = event_type {
        out.push_str("event: ");
        out.push_str(t);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

pub fn filter_matches(types: &[String], event_type: &str) -> bool {
    types.is_empty() || types.iter().any(|f| type_matches(f, event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_once_with_and_without_their_type() {
        assert_eq!(
            &encode_data("7", Some("order.created"), "{}")[..],
            b"id: 7\nevent: order.created\ndata: {}\n\n"
        );
        assert_eq!(&encode_data("7", None, "a\nb")[..], b"id: 7\ndata: a\ndata: b\n\n");
        assert_eq!(&comment("keep-alive")[..], b": keep-alive\n\n");
    }
}
