//! The JSON body of a webhook (and of an SSE `data:` line), built once per event from the
//! stored payload text without parsing it again.

use actix_web::web::Bytes;

use crate::timefmt::rfc3339;

/// What an envelope shows of an event, as plain values (however the event is kept).
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    /// Unix milliseconds.
    pub created_at: i64,
    pub version: i32,
    pub correlation_id: Option<&'a str>,
    /// The event's data: JSON text, copied in as it is.
    pub payload: &'a str,
}

pub fn envelope(event: EventFields<'_>) -> Bytes {
    Bytes::from(envelope_text(event))
}

pub fn envelope_text(event: EventFields<'_>) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::with_capacity(event.payload.len() + 160);
    out.push_str("{\"id\":");
    out.push_str(&quote(event.id));
    out.push_str(",\"type\":");
    out.push_str(&quote(event.event_type));
    out.push_str(",\"created_at\":");
    out.push_str(&quote(&rfc3339(event.created_at)));
    out.push_str(",\"version\":");
    out.push_str(&event.version.to_string());
    if let Some(c) = event.correlation_id {
        out.push_str(",\"correlation_id\":");
        out.push_str(&quote(c));
    }
    out.push_str(",\"data\":");
    out.push_str(event.payload);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_valid_json_with_the_event_fields() {
        let event = EventFields {
            id: "evt_1",
            event_type: "a.b",
            payload: r#"{"x":[1,"\"q\""]}"#,
            correlation_id: Some("c\n1"),
            created_at: 0,
            version: 2,
        };
        let v: serde_json::Value = serde_json::from_slice(&envelope(event)).unwrap();
        assert_eq!(v["id"], "evt_1");
        assert_eq!(v["type"], "a.b");
        assert_eq!(v["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["correlation_id"], "c\n1");
        assert_eq!(v["version"], 2);
        assert_eq!(v["data"]["x"][1], "\"q\"");
    }
}
