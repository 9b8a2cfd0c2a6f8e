//! The string sets herald stores as text, as enums. Each knows the name it is stored and
//! shown under (`as_str`, also its `Display` and JSON form) and parses it back (`parse`);
//! the store reads and writes the enums themselves (`store::text_columns`), so a misspelt
//! status is a compile error rather than a query that quietly matches nothing.

/// Declares a string-set enum: `Name { Variant = "text", … }`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// Where a delivery stands (DESIGN §3).
    pub enum DeliveryStatus {
        /// Waiting for its first or next attempt, or being attempted.
        Pending = "pending",
        Succeeded = "succeeded",
        /// Answered with a status that is not retried, or cancelled, or its endpoint deleted.
        Failed = "failed",
        /// Its retries ran out.
        Dead = "dead",
    }
}

text_enum! {
    /// Whether an endpoint is sent to. `Deleted` is only ever written by a delete (the API
    /// takes `active` or `disabled`).
    pub enum EndpointStatus {
        Active = "active",
        Disabled = "disabled",
        Deleted = "deleted",
    }
}

text_enum! {
    /// An endpoint's `ordering`.
    pub enum DeliveryOrder {
        /// Deliveries go in parallel, each when it is due.
        Unordered = "none",
        /// One at a time, in event order, each after the one before is final.
        Fifo = "fifo",
    }
}

text_enum! {
    /// The provider an inbound source verifies signatures of.
    pub enum SourceKind {
        Stripe = "stripe",
        Github = "github",
        StandardWebhooks = "standard-webhooks",
        HmacSha256 = "hmac-sha256",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(*s));
        }
        for s in EndpointStatus::ALL {
            assert_eq!(EndpointStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(DeliveryOrder::parse("none"), Some(DeliveryOrder::Unordered));
        assert_eq!(SourceKind::parse("standard-webhooks"), Some(SourceKind::StandardWebhooks));
        assert_eq!(DeliveryStatus::parse("Pending"), None);
        assert_eq!(serde_json::to_string(&DeliveryStatus::Dead).unwrap(), "\"dead\"");
        assert_eq!(SourceKind::HmacSha256.to_string(), "hmac-sha256");
    }
}
